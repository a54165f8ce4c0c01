package eddy.conformance;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A script: records {@code r KEY TS VALUE [KIND]} (KIND a changelog row kind, {@code +I} unless
 * given) and watermarks {@code w TS}, one per line, in the order a source emits them (the
 * format the eddy side writes), and in a restore case's script its restore point {@code s}.
 */
public final class Script implements Serializable {
    /** One element: a record (key, ts, value) or, when {@code key} is null, a watermark at ts. */
    public static final class Element implements Serializable {
        public final String key;
        public final long ts;
        public final long value;
        /** {@code +I}, {@code -U}, {@code +U} or {@code -D}. */
        public final String kind;

        Element(String key, long ts, long value, String kind) {
            this.key = key;
            this.ts = ts;
            this.value = value;
            this.kind = kind;
        }

        public boolean isWatermark() {
            return key == null;
        }
    }

    public final List<Element> elements;
    /** The restore point ({@code s}): how many elements come before it; -1 if none. */
    public final int savepointAt;

    Script(List<Element> elements, int savepointAt) {
        this.elements = elements;
        this.savepointAt = savepointAt;
    }

    public static Script read(Path path) throws IOException {
        List<Element> elements = new ArrayList<>();
        int savepointAt = -1;
        for (String line : Files.readAllLines(path)) {
            String[] f = line.trim().split("\\s+");
            if (f.length == 0 || f[0].isEmpty()) {
                continue;
            }
            switch (f[0]) {
                case "r":
                    elements.add(new Element(f[1], Long.parseLong(f[2]), Long.parseLong(f[3]), f.length > 4 ? f[4] : "+I"));
                    break;
                case "w":
                    elements.add(new Element(null, Long.parseLong(f[1]), 0, null));
                    break;
                case "s":
                    savepointAt = elements.size();
                    break;
                default:
                    throw new IOException("bad script line in " + path + ": " + line);
            }
        }
        return new Script(elements, savepointAt);
    }
}
