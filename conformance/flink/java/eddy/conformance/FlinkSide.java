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

import org.apache.flink.configuration.Configuration;
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
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(Integer.parseInt(spec.getOrDefault("parallelism", "1")));
        List<Path> outs = new ArrayList<>();
        Tag.OUTPUTS.clear();
        boolean sql = "sql".equals(spec.get("kind"));
        StreamTableEnvironment tables = sql ? StreamTableEnvironment.create(env) : null;
        for (int i = 2; i < f.length; i += 2) {
            int slot = outs.size();
            if (sql) {
                Sql.add(env, tables, spec, Paths.get(f[i]), slot);
            } else {
                Pipelines.add(env, spec, Script.read(Paths.get(f[i])), slot);
            }
            outs.add(Paths.get(f[i + 1]));
        }
        miniCluster.executeJobBlocking(env.getStreamGraph().getJobGraph());
        for (int slot = 0; slot < outs.size(); slot++) {
            List<String> lines = Tag.OUTPUTS.getOrDefault(slot, new ArrayList<>());
            Files.write(outs.get(slot), lines, StandardCharsets.UTF_8);
        }
    }
}
