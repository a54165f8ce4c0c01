package eddy.conformance;

import java.time.Duration;
import java.util.Map;

import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.datastream.WindowedStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.EventTimeSessionWindows;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.WindowAssigner;
import org.apache.flink.streaming.api.windowing.evictors.CountEvictor;
import org.apache.flink.streaming.api.windowing.evictors.TimeEvictor;
import org.apache.flink.streaming.api.windowing.triggers.ContinuousEventTimeTrigger;
import org.apache.flink.streaming.api.windowing.triggers.CountTrigger;
import org.apache.flink.streaming.api.windowing.triggers.EventTimeTrigger;
import org.apache.flink.streaming.api.windowing.triggers.PurgingTrigger;
import org.apache.flink.streaming.api.windowing.triggers.Trigger;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/** The DataStream cases: one pipeline per script, built from the case's spec. */
final class Pipelines {
    static final TypeInformation<Tuple3<String, Long, Long>> EVENT = Types.TUPLE(Types.STRING, Types.LONG, Types.LONG);
    static final TypeInformation<Object> NOTHING = Types.GENERIC(Object.class);

    private Pipelines() {}

    static final class ByKey implements KeySelector<Tuple3<String, Long, Long>, String> {
        @Override
        public String getKey(Tuple3<String, Long, Long> e) {
            return e.f0;
        }
    }

    static long num(Map<String, String> spec, String name) {
        String value = spec.get(name);
        if (value == null) {
            throw new IllegalArgumentException("the case spec has no " + name + ": " + spec);
        }
        return Long.parseLong(value);
    }

    static Duration ms(Map<String, String> spec, String name) {
        return Duration.ofMillis(num(spec, name));
    }

    /**
     * Adds the pipeline of one script (its outputs go to {@code slot}); its source stops before
     * element {@code stopAt} (-1: it runs to the end).
     */
    static void add(StreamExecutionEnvironment env, Map<String, String> spec, Script script, int slot, int stopAt) {
        int parallelism = (int) num(spec, "parallelism");
        DataStream<Tuple3<String, Long, Long>> input =
                env.addSource(new ScriptSource(script, slot, stopAt), "script-" + slot, EVENT);
        switch (spec.get("kind")) {
            case "window":
                window(input, spec, slot, parallelism);
                break;
            case "process":
                input.keyBy(new ByKey())
                        .process(new TimerFunction())
                        .setParallelism(parallelism)
                        .transform("tag", NOTHING, new Tag<String>(slot, "main"))
                        .setParallelism(parallelism);
                break;
            default:
                throw new IllegalArgumentException("unknown case kind: " + spec);
        }
    }

    static WindowAssigner<Object, TimeWindow> assigner(Map<String, String> spec) {
        switch (spec.get("assigner")) {
            case "tumbling":
                return TumblingEventTimeWindows.of(ms(spec, "size"), ms(spec, "offset"));
            case "sliding":
                return SlidingEventTimeWindows.of(ms(spec, "size"), ms(spec, "slide"), ms(spec, "offset"));
            case "session":
                return EventTimeSessionWindows.withGap(ms(spec, "gap"));
            default:
                throw new IllegalArgumentException("unknown assigner: " + spec);
        }
    }

    static Trigger<Object, TimeWindow> trigger(Map<String, String> spec) {
        Trigger<Object, TimeWindow> trigger;
        switch (spec.get("trigger")) {
            case "event":
                trigger = EventTimeTrigger.create();
                break;
            case "continuous":
                trigger = ContinuousEventTimeTrigger.of(ms(spec, "interval"));
                break;
            case "count":
                trigger = CountTrigger.of(num(spec, "count"));
                break;
            default:
                throw new IllegalArgumentException("unknown trigger: " + spec);
        }
        return "1".equals(spec.get("purging")) ? PurgingTrigger.of(trigger) : trigger;
    }

    static void window(DataStream<Tuple3<String, Long, Long>> input, Map<String, String> spec, int slot, int parallelism) {
        OutputTag<Tuple3<String, Long, Long>> late = new OutputTag<>("late", EVENT);
        WindowedStream<Tuple3<String, Long, Long>, String, TimeWindow> windowed = input.keyBy(new ByKey())
                .window(assigner(spec))
                .allowedLateness(ms(spec, "lateness"))
                .trigger(trigger(spec))
                .sideOutputLateData(late);
        switch (spec.getOrDefault("evictor", "none")) {
            case "none":
                break;
            case "count":
                windowed = windowed.evictor(CountEvictor.of(num(spec, "keep")));
                break;
            case "time":
                windowed = windowed.evictor(TimeEvictor.of(ms(spec, "keep")));
                break;
            default:
                throw new IllegalArgumentException("unknown evictor: " + spec);
        }
        SingleOutputStreamOperator<String> results =
                windowed.aggregate(new SumCount(), new Describe()).setParallelism(parallelism);
        results.transform("tag", NOTHING, new Tag<String>(slot, "main")).setParallelism(parallelism);
        results.getSideOutput(late)
                .transform("tag-late", NOTHING, new Tag<Tuple3<String, Long, Long>>(slot, "late"))
                .setParallelism(parallelism);
    }

    /** Sum and count of the values. */
    static final class SumCount
            implements AggregateFunction<Tuple3<String, Long, Long>, Tuple2<Long, Long>, Tuple2<Long, Long>> {
        @Override
        public Tuple2<Long, Long> createAccumulator() {
            return Tuple2.of(0L, 0L);
        }

        @Override
        public Tuple2<Long, Long> add(Tuple3<String, Long, Long> e, Tuple2<Long, Long> acc) {
            return Tuple2.of(acc.f0 + e.f2, acc.f1 + 1);
        }

        @Override
        public Tuple2<Long, Long> getResult(Tuple2<Long, Long> acc) {
            return acc;
        }

        @Override
        public Tuple2<Long, Long> merge(Tuple2<Long, Long> a, Tuple2<Long, Long> b) {
            return Tuple2.of(a.f0 + b.f0, a.f1 + b.f1);
        }
    }

    /** {@code key [start,end) sum=S n=N}: the format the eddy side prints. */
    static final class Describe extends ProcessWindowFunction<Tuple2<Long, Long>, String, String, TimeWindow> {
        @Override
        public void process(String key, Context ctx, Iterable<Tuple2<Long, Long>> values, Collector<String> out) {
            for (Tuple2<Long, Long> v : values) {
                TimeWindow w = ctx.window();
                out.collect(key + " [" + w.getStart() + "," + w.getEnd() + ") sum=" + v.f0 + " n=" + v.f1);
            }
        }
    }

    /**
     * Per key: a running sum and count; each record registers an event-time timer at the next
     * second boundary (a value of 7 deletes it instead); a timer reports the state and, after
     * three records or more, resets the count and registers another 1.5 s later (possibly
     * already behind the watermark). The eddy side's `TimerFunction` is the same.
     */
    static final class TimerFunction extends KeyedProcessFunction<String, Tuple3<String, Long, Long>, String> {
        private transient ValueState<Tuple2<Long, Long>> state;

        @Override
        public void open(org.apache.flink.api.common.functions.OpenContext context) {
            state = getRuntimeContext()
                    .getState(new ValueStateDescriptor<>("sum-count", Types.TUPLE(Types.LONG, Types.LONG)));
        }

        static long nextSecond(long ts) {
            return ts - Math.floorMod(ts, 1000L) + 1000L;
        }

        @Override
        public void processElement(Tuple3<String, Long, Long> e, Context ctx, Collector<String> out) throws Exception {
            Tuple2<Long, Long> s = state.value();
            if (s == null) {
                s = Tuple2.of(0L, 0L);
            }
            state.update(Tuple2.of(s.f0 + e.f2, s.f1 + 1));
            long watermark = ctx.timerService().currentWatermark();
            long timer = nextSecond(e.f1);
            if (e.f2 == 7) {
                ctx.timerService().deleteEventTimeTimer(timer);
            } else {
                ctx.timerService().registerEventTimeTimer(timer);
            }
            out.collect("record " + e.f0 + " @" + e.f1 + " =" + e.f2 + " behind=" + (e.f1 <= watermark));
        }

        @Override
        public void onTimer(long timestamp, OnTimerContext ctx, Collector<String> out) throws Exception {
            Tuple2<Long, Long> s = state.value();
            if (s == null) {
                s = Tuple2.of(0L, 0L);
            }
            long watermark = ctx.timerService().currentWatermark();
            out.collect("timer " + ctx.getCurrentKey() + " @" + timestamp + " sum=" + s.f0 + " n=" + s.f1 + " watermark="
                    + watermark);
            if (s.f1 >= 3) {
                state.update(Tuple2.of(s.f0, 0L));
                ctx.timerService().registerEventTimeTimer(timestamp + 1500);
            }
        }
    }
}
