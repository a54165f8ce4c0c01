package eddy.conformance;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.SavepointRestoreSettings;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;

/**
 * The Flink side of the conformance suite: one JVM, one local MiniCluster (random ports), many
 * jobs. It reads requests from stdin, one per line, tab-separated:
 *
 * <pre>batch SPEC SCRIPT OUT [SCRIPT OUT ...]</pre>
 *
 * SPEC is the case ({@code kind=window assigner=session gap=3000 ...}); each SCRIPT file is run
 * by a pipeline of its own, all in one job, and its outputs are written to OUT, one per line:
 * {@code main|late TAB last-watermark TAB payload}. Each request is answered on stdout by a line
 * {@code @@ok} or {@code @@error MESSAGE}; other stdout lines are Flink's and are ignored.
 */
public final class FlinkSide {
    public static void main(String[] args) throws Exception {
        Configuration conf = new Configuration();
        conf.set(TaskManagerOptions.NETWORK_MEMORY_MIN, MemorySize.parse("256m"));
        conf.set(TaskManagerOptions.NETWORK_MEMORY_MAX, MemorySize.parse("256m"));
        conf.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MemorySize.parse("32m"));
        MiniClusterConfiguration cluster = new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(4)
                .withRandomPorts()
                .build();
        try (MiniCluster miniCluster = new MiniCluster(cluster)) {
            miniCluster.start();
            System.out.println("@@ready");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                String[] f = line.split("\t");
                try {
                    if (!f[0].equals("batch") || f.length < 4 || f.length % 2 != 0) {
                        throw new IllegalArgumentException("bad request: " + line);
                    }
                    runBatch(miniCluster, parseSpec(f[1]), f);
                    System.out.println("@@ok");
                } catch (Throwable t) {
                    Throwable root = t;
                    while (root.getCause() != null) {
                        root = root.getCause();
                    }
                    System.out.println("@@error " + (t + " / " + root).replace('\n', ' '));
                }
                System.out.flush();
            }
        }
        System.exit(0);
    }

    static Map<String, String> parseSpec(String spec) {
        Map<String, String> map = new HashMap<>();
        for (String part : spec.trim().split("\\s+")) {
            int eq = part.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("bad case spec part: " + part);
            }
            map.put(part.substring(0, eq), part.substring(eq + 1));
        }
        return map;
    }

    static void runBatch(MiniCluster miniCluster, Map<String, String> spec, String[] f) throws Exception {
        if ("1".equals(spec.get("restore"))) {
            runRestore(miniCluster, spec, f);
            return;
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(Integer.parseInt(spec.getOrDefault("parallelism", "1")));
        List<Path> outs = new ArrayList<>();
        Tag.OUTPUTS.clear();
        Tag.WATERMARKS.clear();
        boolean sql = "sql".equals(spec.get("kind"));
        StreamTableEnvironment tables = sql ? StreamTableEnvironment.create(env) : null;
        for (int i = 2; i < f.length; i += 2) {
            int slot = outs.size();
            if (sql) {
                Sql.add(env, tables, spec, Paths.get(f[i]), slot);
            } else {
                Pipelines.add(env, spec, Script.read(Paths.get(f[i])), slot, -1);
            }
            outs.add(Paths.get(f[i + 1]));
        }
        miniCluster.executeJobBlocking(env.getStreamGraph().getJobGraph());
        for (int slot = 0; slot < outs.size(); slot++) {
            List<String> lines = Tag.OUTPUTS.getOrDefault(slot, new ArrayList<>());
            Files.write(outs.get(slot), lines, StandardCharsets.UTF_8);
        }
    }

    /**
     * A restore case: the first job runs each script up to its restore point; once every source
     * is there, stop-with-savepoint (without draining: no end-of-time watermark). A second job,
     * the same pipelines restored from that savepoint, runs the rest. The first job's outputs
     * are written as they are, the second's with their stream prefixed {@code restored-}.
     */
    static void runRestore(MiniCluster miniCluster, Map<String, String> spec, String[] f) throws Exception {
        List<Script> scripts = new ArrayList<>();
        List<Path> outs = new ArrayList<>();
        for (int i = 2; i < f.length; i += 2) {
            scripts.add(Script.read(Paths.get(f[i])));
            outs.add(Paths.get(f[i + 1]));
        }
        Tag.OUTPUTS.clear();
        ScriptSource.PAUSED.clear();
        Tag.STOP_AT_SNAPSHOT = true;
        String savepoint;
        Path dir = Files.createTempDirectory("eddy-savepoint");
        try {
            JobGraph first = restoreJob(spec, scripts, true).getStreamGraph().getJobGraph();
            JobID id = miniCluster.submitJob(first).get().getJobID();
            try {
                long deadline = System.currentTimeMillis() + 60_000;
                while (ScriptSource.PAUSED.size() < scripts.size()) {
                    JobStatus status = miniCluster.getJobStatus(id).get();
                    if (status.isTerminalState() || System.currentTimeMillis() > deadline) {
                        throw new IllegalStateException("the first job did not reach its restore points: " + status);
                    }
                    Thread.sleep(2);
                }
                // The sources may reach their restore points before every task runs: a savepoint
                // is refused until then.
                while (true) {
                    try {
                        savepoint = miniCluster
                                .stopWithSavepoint(id, dir.toUri().toString(), false, SavepointFormatType.CANONICAL)
                                .get();
                        break;
                    } catch (java.util.concurrent.ExecutionException e) {
                        if (System.currentTimeMillis() > deadline) {
                            throw e;
                        }
                        Thread.sleep(5);
                    }
                }
                miniCluster.requestJobResult(id).get();
            } catch (Exception e) {
                miniCluster.cancelJob(id).get();
                miniCluster.requestJobResult(id).get();
                throw e;
            }
        } finally {
            Tag.STOP_AT_SNAPSHOT = false;
        }
        Map<Integer, List<String>> before = new HashMap<>();
        Tag.OUTPUTS.forEach((slot, lines) -> before.put(slot, new ArrayList<>(lines)));
        Tag.OUTPUTS.clear();
        JobGraph second = restoreJob(spec, scripts, false).getStreamGraph().getJobGraph();
        second.setSavepointRestoreSettings(SavepointRestoreSettings.forPath(savepoint, false));
        try {
            miniCluster.executeJobBlocking(second);
        } finally {
            try (java.util.stream.Stream<Path> files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        for (int slot = 0; slot < outs.size(); slot++) {
            List<String> lines = new ArrayList<>(before.getOrDefault(slot, new ArrayList<>()));
            for (String line : Tag.OUTPUTS.getOrDefault(slot, new ArrayList<>())) {
                lines.add("restored-" + line);
            }
            Files.write(outs.get(slot), lines, StandardCharsets.UTF_8);
        }
    }

    static StreamExecutionEnvironment restoreJob(Map<String, String> spec, List<Script> scripts, boolean first) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(Integer.parseInt(spec.getOrDefault("parallelism", "1")));
        for (int slot = 0; slot < scripts.size(); slot++) {
            Script script = scripts.get(slot);
            if (script.savepointAt < 0) {
                throw new IllegalArgumentException("a restore case's script has no restore point (s)");
            }
            Pipelines.add(env, spec, script, slot, first ? script.savepointAt : -1);
        }
        return env;
    }
}
