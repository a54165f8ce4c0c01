package eddy.conformance;

import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.streaming.api.functions.source.legacy.SourceFunction;
import org.apache.flink.streaming.api.watermark.Watermark;

/**
 * Emits exactly a script: each record with its timestamp, each watermark where it stands. At
 * the end the source finishes, and Flink sends the end-of-time watermark.
 */
public final class ScriptSource implements SourceFunction<Tuple3<String, Long, Long>> {
    private final Script script;

    public ScriptSource(Script script) {
        this.script = script;
    }

    @Override
    public void run(SourceContext<Tuple3<String, Long, Long>> ctx) {
        for (Script.Element e : script.elements) {
            synchronized (ctx.getCheckpointLock()) {
                if (e.isWatermark()) {
                    ctx.emitWatermark(new Watermark(e.ts));
                } else {
                    ctx.collectWithTimestamp(Tuple3.of(e.key, e.ts, e.value), e.ts);
                }
            }
        }
    }

    @Override
    public void cancel() {}
}
