package eddy.conformance;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.source.legacy.SourceFunction;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

/**
 * The changelog cases, through Flink SQL: a script is a changelog of rows {@code (k, ts, v)}
 * (each record's kind says what it does), read as a table {@code t} with a rowtime {@code rt}
 * (the record's timestamp) and the script's watermarks; the case's query runs over it and its
 * changelog goes to the tagging sink as {@code KIND field field ...}.
 */
final class Sql {
    static final TypeInformation<Row> ROW =
            Types.ROW_NAMED(new String[] {"k", "ts", "v"}, Types.STRING, Types.LONG, Types.LONG);

    private Sql() {}

    /**
     * Emits a script's records as changelog rows, its watermarks where they stand. A paced
     * source (slot {@code >= 0}) waits after each watermark until its slot's sink has seen it:
     * a two-input operator (the temporal join) then has that watermark on both inputs before
     * the next record comes, as the script means, instead of whenever the network hands over
     * each input's buffers. Without it, whether a record just behind the watermark is late at
     * the join depends on which input the join read first.
     */
    static final class RowSource implements SourceFunction<Row> {
        private final Script script;
        private final int pacedSlot;
        private volatile boolean running = true;

        RowSource(Script script) {
            this(script, -1);
        }

        RowSource(Script script, int pacedSlot) {
            this.script = script;
            this.pacedSlot = pacedSlot;
        }

        @Override
        public void run(SourceContext<Row> ctx) throws InterruptedException {
            for (Script.Element e : script.elements) {
                synchronized (ctx.getCheckpointLock()) {
                    if (e.isWatermark()) {
                        ctx.emitWatermark(new Watermark(e.ts));
                    } else {
                        Row row = Row.ofKind(kind(e.kind), e.key, e.ts, e.value);
                        ctx.collectWithTimestamp(row, e.ts);
                    }
                }
                if (pacedSlot >= 0 && e.isWatermark()) {
                    long deadline = System.nanoTime() + 10_000_000_000L;
                    while (running && Tag.WATERMARKS.getOrDefault(pacedSlot, Long.MIN_VALUE) < e.ts) {
                        if (System.nanoTime() > deadline) {
                            throw new IllegalStateException("slot " + pacedSlot + ": the sink never saw watermark " + e.ts);
                        }
                        Thread.sleep(0, 200_000);
                    }
                }
            }
        }

        @Override
        public void cancel() {
            running = false;
        }
    }

    static RowKind kind(String shortString) {
        for (RowKind kind : RowKind.values()) {
            if (kind.shortString().equals(shortString)) {
                return kind;
            }
        }
        throw new IllegalArgumentException("unknown row kind: " + shortString);
    }

    /** The query of each SQL case, over the script's table {@code {t}}. */
    static String query(String name) {
        String top = "SELECT k, rn, ts, v FROM (SELECT k, ts, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, ts ASC)"
                + " AS rn FROM {t}) WHERE rn <= 2";
        String dedup = "SELECT k, ts, v FROM (SELECT k, ts, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY rt %s) AS rn"
                + " FROM {t}) WHERE rn = 1";
        String join = "SELECT l.k, l.ts, l.v, r.ts, r.v FROM (SELECT * FROM {t} WHERE v <= 5) AS l %s JOIN"
                + " (SELECT * FROM {t} WHERE v > 5) AS r ON l.k = r.k";
        switch (name) {
            case "count":
                return "SELECT k, COUNT(*) FROM {t} GROUP BY k";
            case "sum":
                return "SELECT k, SUM(v) FROM {t} GROUP BY k";
            case "avg":
                return "SELECT k, AVG(v) FROM {t} GROUP BY k";
            case "min":
                return "SELECT k, MIN(v) FROM {t} GROUP BY k";
            case "max":
                return "SELECT k, MAX(v) FROM {t} GROUP BY k";
            case "count-distinct":
                return "SELECT k, COUNT(DISTINCT v) FROM {t} GROUP BY k";
            case "sum-distinct":
                return "SELECT k, SUM(DISTINCT v) FROM {t} GROUP BY k";
            case "top2":
                return top;
            case "inner-join":
                return String.format(join, "INNER");
            case "left-join":
                return String.format(join, "LEFT");
            case "semi-join":
                return "SELECT l.k, l.ts, l.v FROM {t} AS l WHERE l.v <= 5 AND l.k IN (SELECT k FROM {t} WHERE v > 5)";
            case "anti-join":
                return "SELECT l.k, l.ts, l.v FROM {t} AS l WHERE l.v <= 5"
                        + " AND NOT EXISTS (SELECT * FROM {t} AS r WHERE r.v > 5 AND r.k = l.k)";
            case "interval-join":
                // eddy's join_changelog_with_ttl(.., 1000, 500): l.ts <= r.ts < l.ts + 1000 or
                // r.ts < l.ts < r.ts + 500.
                return String.format(join, "INNER")
                        + " AND r.rt BETWEEN l.rt - INTERVAL '0.499' SECOND AND l.rt + INTERVAL '0.999' SECOND";
            case "keep-first":
                return String.format(dedup, "ASC");
            case "keep-last":
                return String.format(dedup, "DESC");
            case "debezium-rows":
                return "SELECT k, ts, v FROM {t}";
            case "debezium-sum":
                return "SELECT k, SUM(v) FROM {t} GROUP BY k";
            default:
                throw new IllegalArgumentException("unknown SQL case: " + name);
        }
    }

    /**
     * Adds the SQL pipeline of one script (its outputs go to {@code slot}). For the Debezium
     * cases the file holds Debezium JSON lines, read by a filesystem table in
     * {@code debezium-json}, with the spec's {@code schema-include} (Kafka Connect's
     * {@code {"schema": .., "payload": ..}}) and {@code ignore-parse-errors}.
     */
    static void add(StreamExecutionEnvironment env, StreamTableEnvironment tables, Map<String, String> spec,
            Path path, int slot) throws IOException {
        String view = "t" + slot;
        String query = spec.get("query");
        if (query.startsWith("debezium")) {
            tables.executeSql("CREATE TEMPORARY TABLE " + view + " (k STRING, ts BIGINT, v BIGINT) WITH ("
                    + "'connector' = 'filesystem', 'path' = '" + path.toAbsolutePath()
                    + "', 'format' = 'debezium-json'"
                    + ", 'debezium-json.schema-include' = '" + "1".equals(spec.get("schema-include")) + "'"
                    + ", 'debezium-json.ignore-parse-errors' = '" + "1".equals(spec.get("ignore-parse-errors")) + "')");
            tag(tables, tables.sqlQuery(query(query).replace("{t}", view)), slot);
            return;
        }
        Script script = Script.read(path);
        boolean paced = "1".equals(spec.get("paced"));
        if (paced) {
            // Each element goes out at once: a paced source waits on every watermark.
            env.setBufferTimeout(0);
        }
        DataStream<Row> rows = env.addSource(new RowSource(script, paced ? slot : -1), "script-" + slot, ROW);
        if (query.equals("temporal-join")) {
            temporalJoin(tables, rows, slot);
            return;
        }
        Table table = tables.fromChangelogStream(
                rows,
                Schema.newBuilder()
                        .column("k", "STRING")
                        .column("ts", "BIGINT")
                        .column("v", "BIGINT")
                        .columnByMetadata("rt", DataTypes.TIMESTAMP_LTZ(3), "rowtime")
                        .watermark("rt", "SOURCE_WATERMARK()")
                        .build(),
                // An interval join takes insert-only input (its script has only inserts).
                query.equals("interval-join") ? ChangelogMode.insertOnly() : ChangelogMode.all());
        tables.createTemporaryView(view, table);
        tag(tables, tables.sqlQuery(query(query).replace("{t}", view)), slot);
    }

    /** Rows {@code (k, ts, v)} with the stream record's timestamp as rowtime and the source's watermarks. */
    static Schema.Builder rowtimeRows() {
        return Schema.newBuilder()
                .column("k", "STRING NOT NULL")
                .column("ts", "BIGINT")
                .column("v", "BIGINT")
                .columnByMetadata("rt", DataTypes.TIMESTAMP_LTZ(3), "rowtime")
                .watermark("rt", "SOURCE_WATERMARK()");
    }

    /**
     * The event-time temporal join: the script's {@code +I} records are probes {@code (k, ts, v)},
     * its {@code +U} and {@code -D} records the changes of a versioned table (an upsert
     * changelog with primary key {@code k}); both with the record's timestamp as rowtime and
     * the script's watermarks. Each probe joins the version of its key valid at its rowtime
     * ({@code LEFT JOIN ... FOR SYSTEM_TIME AS OF}).
     *
     * <p>The versioned table is read as a changelog of {@code +U} and {@code -D} rows, each at its
     * own rowtime ({@code ChangelogMode.all()}). Read in upsert mode instead, the planner adds a
     * {@code ChangelogNormalize} that emits a delete as the row it deletes, at that row's
     * rowtime: the delete then erases the version from its start ({@code +U b 6213 =7},
     * probe {@code b @6500}, {@code -D b @7000}: the probe joins null, not 7).
     */
    static void temporalJoin(StreamTableEnvironment tables, DataStream<Row> rows, int slot) {
        Schema schema = rowtimeRows().build();
        DataStream<Row> probes = rows.filter(r -> r.getKind() == RowKind.INSERT).returns(ROW);
        DataStream<Row> changes = rows.filter(r -> r.getKind() != RowKind.INSERT).returns(ROW);
        tables.createTemporaryView("p" + slot, tables.fromChangelogStream(probes, schema, ChangelogMode.insertOnly()));
        Schema versioned = rowtimeRows().primaryKey("k").build();
        tables.createTemporaryView("v" + slot, tables.fromChangelogStream(changes, versioned, ChangelogMode.all()));
        tag(tables, tables.sqlQuery("SELECT p.k, p.ts, p.v, r.v FROM p" + slot + " AS p LEFT JOIN v" + slot
                + " FOR SYSTEM_TIME AS OF p.rt AS r ON p.k = r.k"), slot);
    }

    static void tag(StreamTableEnvironment tables, Table result, int slot) {
        tables.toChangelogStream(result)
                .transform("tag", Pipelines.NOTHING, new Tag<Row>(slot, "main"))
                .setParallelism(1);
    }
}
