package eddy.conformance;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.source.legacy.SourceFunction;
import org.apache.flink.streaming.api.watermark.Watermark;

/**
 * Emits exactly a script: each record with its timestamp, each watermark where it stands. At
 * the end the source finishes, and Flink sends the end-of-time watermark.
 *
 * <p>In the first job of a restore case it stops at the script's restore point instead: it
 * marks its slot in {@link #PAUSED} and waits (without the checkpoint lock) for the savepoint
 * that stops the job. Its position is operator state, so the job restored from that savepoint
 * goes on from there.
 */
public final class ScriptSource implements SourceFunction<Tuple3<String, Long, Long>>, CheckpointedFunction {
    /** The slots whose source reached its restore point (the MiniCluster runs in this JVM). */
    static final Map<Integer, Boolean> PAUSED = new ConcurrentHashMap<>();

    private final Script script;
    private final int slot;
    /** Stop before this element (-1: run to the end). */
    private final int stopAt;
    private volatile boolean running = true;
    private int position;
    private transient ListState<Integer> positionState;

    public ScriptSource(Script script) {
        this(script, 0, -1);
    }

    public ScriptSource(Script script, int slot, int stopAt) {
        this.script = script;
        this.slot = slot;
        this.stopAt = stopAt;
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        positionState = context.getOperatorStateStore()
                .getListState(new ListStateDescriptor<>("position", Types.INT));
        position = 0;
        if (context.isRestored()) {
            for (Integer p : positionState.get()) {
                position = p;
            }
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        positionState.update(java.util.List.of(position));
    }

    @Override
    public void run(SourceContext<Tuple3<String, Long, Long>> ctx) throws InterruptedException {
        while (position < script.elements.size()) {
            if (position == stopAt) {
                PAUSED.put(slot, true);
                while (running) {
                    Thread.sleep(1);
                }
                return;
            }
            synchronized (ctx.getCheckpointLock()) {
                Script.Element e = script.elements.get(position);
                if (e.isWatermark()) {
                    ctx.emitWatermark(new Watermark(e.ts));
                } else {
                    ctx.collectWithTimestamp(Tuple3.of(e.key, e.ts, e.value), e.ts);
                }
                position++;
            }
        }
    }

    @Override
    public void cancel() {
        running = false;
    }
}
