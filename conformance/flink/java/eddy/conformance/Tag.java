package eddy.conformance;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * The sink: records each output with the last watermark this task saw before it (the eddy
 * side turns that into the watermark epoch). Chained to the operator it observes, one per
 * parallel task, so that its watermarks are that task's own.
 */
public final class Tag<T> extends AbstractStreamOperator<Object> implements OneInputStreamOperator<T, Object> {
    /** Outputs per script slot of the running job: the MiniCluster runs in this JVM. */
    static final Map<Integer, List<String>> OUTPUTS = new ConcurrentHashMap<>();
    /**
     * Set for the first job of a restore case: a task's outputs after its first snapshot (the
     * savepoint) are not kept, as an exactly-once sink would not commit them; the restored job
     * produces them.
     */
    static volatile boolean STOP_AT_SNAPSHOT = false;
    /** The last watermark the sinks of each script slot saw (a paced source waits for it). */
    static final Map<Integer, Long> WATERMARKS = new ConcurrentHashMap<>();

    private final int slot;
    private final String stream;
    private transient long watermark;
    private transient boolean stopped;

    public Tag(int slot, String stream) {
        this.slot = slot;
        this.stream = stream;
    }

    @Override
    public void open() throws Exception {
        super.open();
        watermark = Long.MIN_VALUE;
        stopped = false;
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        stopped = STOP_AT_SNAPSHOT;
    }

    @Override
    public void processElement(StreamRecord<T> record) {
        if (stopped) {
            return;
        }
        Object value = record.getValue();
        String payload;
        if (value instanceof Tuple3) {
            Tuple3<?, ?, ?> t = (Tuple3<?, ?, ?>) value;
            payload = t.f0 + " @" + t.f1 + " =" + t.f2;
        } else if (value instanceof Row) {
            Row row = (Row) value;
            StringBuilder text = new StringBuilder(row.getKind().shortString());
            for (int i = 0; i < row.getArity(); i++) {
                text.append(' ').append(row.getField(i));
            }
            payload = text.toString();
        } else {
            payload = String.valueOf(value);
        }
        OUTPUTS.computeIfAbsent(slot, s -> new CopyOnWriteArrayList<>()).add(stream + "\t" + watermark + "\t" + payload);
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        watermark = mark.getTimestamp();
        WATERMARKS.merge(slot, watermark, Math::max);
        super.processWatermark(mark);
    }
}
