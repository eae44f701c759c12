/*
 * ForeignRows: a "foreign" HBase application for culvert_py's tests.
 *
 * A plain Java client on HBase's own jars (org.apache.hadoop.hbase.client + util.Bytes) that
 * writes and reads cells the way Java services do: Bytes.toBytes(int), Bytes.toBytes(double),
 * Bytes.toBytes(String) ... and Bytes.toInt/toDouble/toString on the way back. Tests drive it
 * in batches through JSON Lines on stdin/stdout; run it with hbase/foreign/run.
 *
 *   run [--zk QUORUM] [--zk-port N] [--znode PATH] COMMAND ARGS...
 *
 *   create TABLE FAMILY... [--splits N] [--split CODEC:VALUE]...
 *   drop   TABLE
 *   put    TABLE   stdin {"row": ROW, "ts": T?, "cells": [{"family","qualifier","codec","value","ts"?}]}
 *   get    TABLE   stdin {"row": ROW, "cells": [{"family","qualifier","codec"}]}   (no "cells": all)
 *   delete TABLE   stdin {"row": ROW, "cells": [{"family","qualifier"}]?, "ts": T?}  or a bare ROW
 *   scan   TABLE [--limit N]
 *
 * ROW is a JSON string (UTF-8) or {"codec": C, "value": V} with any value codec below, or
 * {"codec": "composite", "value": "a#b"} / {"codec": "composite", "value": ["a","b"], "sep": "#"}.
 * Codecs: int16 int32 int64 float32 float64 bool utf8 raw(hex) text epoch_millis epoch_seconds
 * iso8601. Every command prints one JSON line per input line (create/drop/put/delete print one
 * summary line). Errors: one line "error: ..." on stderr, exit 2 for bad input, 1 otherwise.
 *
 * ZooKeeper: --zk/--zk-port/--znode, else env CULVERT_FOREIGN_ZK / CULVERT_FOREIGN_ZK_PORT /
 * CULVERT_FOREIGN_ZNODE, else the dev cluster of hbase/hbase-local (127.0.0.1, 2181, /hbase).
 */

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.Cell;
import org.apache.hadoop.hbase.CellUtil;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.TableNotFoundException;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptorBuilder;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.Delete;
import org.apache.hadoop.hbase.client.Get;
import org.apache.hadoop.hbase.client.Put;
import org.apache.hadoop.hbase.client.Result;
import org.apache.hadoop.hbase.client.ResultScanner;
import org.apache.hadoop.hbase.client.Scan;
import org.apache.hadoop.hbase.client.Table;
import org.apache.hadoop.hbase.client.TableDescriptorBuilder;
import org.apache.hadoop.hbase.util.Bytes;

public final class ForeignRows {

  /** Bad input (arguments, JSON, values): exit status 2. */
  static final class InputError extends Exception {
    InputError(String message) {
      super(message);
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final PrintStream OUT =
      new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
          StandardCharsets.UTF_8);

  public static void main(String[] argv) {
    String what = "foreign";
    String where = "?";
    int status = 0;
    try {
      List<String> args = new ArrayList<>(List.of(argv));
      String quorum = option(args, "--zk", env("CULVERT_FOREIGN_ZK", "127.0.0.1"));
      String port = option(args, "--zk-port", env("CULVERT_FOREIGN_ZK_PORT", "2181"));
      String znode = option(args, "--znode", env("CULVERT_FOREIGN_ZNODE", "/hbase"));
      where = quorum + ":" + port + " " + znode;
      if (args.size() < 2) {
        throw new InputError("usage: [--zk QUORUM] [--zk-port N] [--znode PATH] "
            + "create|drop|put|get|delete|scan TABLE ...");
      }
      String command = args.get(0);
      String table = args.get(1);
      what = command + " " + table;
      List<String> rest = args.subList(2, args.size());
      Configuration conf = HBaseConfiguration.create();
      conf.set("hbase.zookeeper.quorum", quorum);
      conf.set("hbase.zookeeper.property.clientPort", port);
      conf.set("zookeeper.znode.parent", znode);
      // fail within half a minute when the cluster is down, not after HBase's ~20 min default
      conf.setInt("hbase.client.retries.number", 7);
      conf.setInt("hbase.client.operation.timeout", 30000);
      conf.setInt("zookeeper.recovery.retry", 2);
      switch (command) {
        case "create": {
          List<byte[]> splits = new ArrayList<>();
          int regions = parseSplits(rest, splits);
          if (rest.isEmpty()) {
            throw new InputError("create needs at least one FAMILY");
          }
          try (Connection c = ConnectionFactory.createConnection(conf)) {
            create(c, table, rest, splits, regions);
          }
          break;
        }
        case "drop":
          noArgs(rest);
          try (Connection c = ConnectionFactory.createConnection(conf)) {
            drop(c, table);
          }
          break;
        case "put":
        case "get":
        case "delete": {
          noArgs(rest);
          List<JsonNode> lines = readLines();
          // the whole batch is checked before connecting: bad input fails fast, writes nothing
          try (Cluster c = new Cluster(conf, table)) {
            if (command.equals("put")) {
              put(c, lines);
            } else if (command.equals("get")) {
              get(c, lines);
            } else {
              delete(c, lines);
            }
          }
          break;
        }
        case "scan": {
          int limit = Integer.parseInt(option(rest, "--limit", "-1"));
          noArgs(rest);
          try (Cluster c = new Cluster(conf, table)) {
            scan(c.table(), limit);
          }
          break;
        }
        default:
          throw new InputError("unknown command '" + command
              + "' (known: create, drop, put, get, delete, scan)");
      }
    } catch (InputError e) {
      status = fail(what, e.getMessage(), 2);
    } catch (NumberFormatException e) {
      status = fail(what, "not a number: " + e.getMessage(), 2);
    } catch (Throwable e) {
      status = fail(what, summary(e) + " (ZooKeeper " + where + ")", 1);
    }
    OUT.flush();
    // HBase's client leaves non-daemon threads behind; the batch is done either way.
    System.exit(status);
  }

  /** The exception and its root cause, each cut short: HBase's retry messages run to pages. */
  private static String summary(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String text = cut(e.getClass().getSimpleName() + ": " + e.getMessage());
    if (root != e) {
      text += "; root cause " + cut(root.getClass().getSimpleName() + ": " + root.getMessage());
    }
    return text;
  }

  private static String cut(String text) {
    text = text.replaceAll("\\s+", " ");
    return text.length() <= 300 ? text : text.substring(0, 300) + " ...";
  }

  private static int fail(String what, String message, int status) {
    OUT.flush();
    System.err.println("error: " + what + ": " + String.valueOf(message).replaceAll("\\s+", " "));
    System.err.flush();
    return status;
  }

  // ------------------------------------------------------------------ commands

  private static void create(Connection c, String table, List<String> families,
      List<byte[]> splits, int regions) throws IOException {
    TableName name = TableName.valueOf(table);
    ObjectNode out = JSON.createObjectNode().put("table", table);
    try (Admin admin = c.getAdmin()) {
      boolean created = false;
      if (!admin.tableExists(name)) {
        TableDescriptorBuilder desc = TableDescriptorBuilder.newBuilder(name);
        for (String f : families) {
          desc.setColumnFamily(ColumnFamilyDescriptorBuilder.of(f));
        }
        if (regions > 1) {
          admin.createTable(desc.build(), uniformSplits(regions));
        } else if (!splits.isEmpty()) {
          admin.createTable(desc.build(), splits.toArray(new byte[0][]));
        } else {
          admin.createTable(desc.build());
        }
        created = true;
      }
      out.put("created", created).put("regions", admin.getRegions(name).size());
    }
    emit(out);
  }

  private static void drop(Connection c, String table) throws IOException {
    TableName name = TableName.valueOf(table);
    boolean dropped = false;
    try (Admin admin = c.getAdmin()) {
      if (admin.tableExists(name)) {
        if (admin.isTableEnabled(name)) {
          admin.disableTable(name);
        }
        admin.deleteTable(name);
        dropped = true;
      }
    }
    emit(JSON.createObjectNode().put("table", table).put("dropped", dropped));
  }

  /** The table of one command, connected on first use. */
  static final class Cluster implements AutoCloseable {
    private final Configuration conf;
    private final TableName name;
    private Connection connection;
    private Table table;

    Cluster(Configuration conf, String table) {
      this.conf = conf;
      this.name = TableName.valueOf(table);
    }

    Table table() throws IOException {
      if (table == null) {
        connection = ConnectionFactory.createConnection(conf);
        // else a missing table surfaces as "Failed 1 action ... servers with issues: null"
        try (Admin admin = connection.getAdmin()) {
          if (!admin.tableExists(name)) {
            throw new TableNotFoundException("table '" + name + "' does not exist");
          }
        }
        table = connection.getTable(name);
      }
      return table;
    }

    @Override
    public void close() throws IOException {
      try {
        if (table != null) {
          table.close();
        }
      } finally {
        if (connection != null) {
          connection.close();
        }
      }
    }
  }

  private static void put(Cluster c, List<JsonNode> lines) throws IOException, InputError {
    List<Put> puts = new ArrayList<>();
    int cells = 0;
    for (int i = 0; i < lines.size(); i++) {
      String at = "line " + (i + 1);
      JsonNode line = object(lines.get(i), at);
      byte[] row = rowKey(line.get("row"), at);
      Long rowTs = timestamp(line.get("ts"), at);
      Put p = new Put(row);
      JsonNode list = line.get("cells");
      if (list == null || !list.isArray() || list.isEmpty()) {
        throw new InputError(at + ": put needs \"cells\": a non-empty list");
      }
      for (JsonNode cell : list) {
        String col = at + " cell " + column(cell, at);
        byte[] value = encode(text(cell, "codec", col), cell.get("value"), col);
        Long ts = timestamp(cell.get("ts"), col);
        ts = ts != null ? ts : rowTs;
        byte[] family = Bytes.toBytes(text(cell, "family", col));
        byte[] qualifier = Bytes.toBytes(text(cell, "qualifier", col));
        if (ts != null) {
          p.addColumn(family, qualifier, ts, value);
        } else {
          p.addColumn(family, qualifier, value);
        }
        cells++;
      }
      puts.add(p);
    }
    c.table().put(puts);
    emit(JSON.createObjectNode().put("rows", puts.size()).put("cells", cells));
  }

  private static void get(Cluster c, List<JsonNode> lines) throws IOException, InputError {
    List<Get> gets = new ArrayList<>();
    List<JsonNode> asked = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String at = "line " + (i + 1);
      JsonNode line = object(lines.get(i), at);
      Get g = new Get(rowKey(line.get("row"), at));
      JsonNode list = line.get("cells");
      if (list != null && !list.isArray()) {
        throw new InputError(at + ": \"cells\" must be a list");
      }
      if (list != null) {
        for (JsonNode cell : list) {
          String col = at + " cell " + column(cell, at);
          checkCodec(text(cell, "codec", col), col);
        }
      }
      gets.add(g); // whole rows: an absent cell reads back as null below
      asked.add(line);
    }
    Result[] results = c.table().get(gets);
    for (int i = 0; i < results.length; i++) {
      Result r = results[i];
      JsonNode line = asked.get(i);
      ObjectNode out = JSON.createObjectNode();
      out.set("row", line.get("row"));
      out.put("row_hex", Bytes.toHex(gets.get(i).getRow()));
      out.put("exists", !r.isEmpty());
      ArrayNode cells = out.putArray("cells");
      JsonNode list = line.get("cells");
      if (list == null) {
        allCells(r, cells);
      } else {
        for (JsonNode cell : list) {
          String codec = cell.get("codec").asText();
          ObjectNode o = cells.addObject()
              .put("family", cell.get("family").asText())
              .put("qualifier", cell.get("qualifier").asText())
              .put("codec", codec);
          Cell found = r.getColumnLatestCell(Bytes.toBytes(cell.get("family").asText()),
              Bytes.toBytes(cell.get("qualifier").asText()));
          if (found == null) {
            o.putNull("value").putNull("hex");
            continue;
          }
          byte[] value = CellUtil.cloneValue(found);
          try {
            decode(codec, value, o);
          } catch (IllegalArgumentException e) {
            // what the Java service would hit: Bytes.toInt etc. refuse a wrong length
            o.putNull("value").put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
          }
          o.put("hex", Bytes.toHex(value)).put("ts", found.getTimestamp());
        }
      }
      emit(out);
    }
  }

  private static void delete(Cluster c, List<JsonNode> lines) throws IOException, InputError {
    List<Delete> deletes = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String at = "line " + (i + 1);
      JsonNode line = lines.get(i);
      boolean wrapped = line.isObject() && line.has("row");
      Delete d = new Delete(rowKey(wrapped ? line.get("row") : line, at));
      Long ts = wrapped ? timestamp(line.get("ts"), at) : null;
      JsonNode list = wrapped ? line.get("cells") : null;
      if (list != null) {
        for (JsonNode cell : list) {
          column(cell, at);
          byte[] f = Bytes.toBytes(cell.get("family").asText());
          byte[] q = Bytes.toBytes(cell.get("qualifier").asText());
          if (ts != null) {
            d.addColumns(f, q, ts);
          } else {
            d.addColumns(f, q);
          }
        }
      } else if (ts != null) {
        d = new Delete(d.getRow(), ts);
      }
      deletes.add(d);
    }
    int n = deletes.size();
    c.table().delete(deletes);
    emit(JSON.createObjectNode().put("rows", n));
  }

  private static void scan(Table t, int limit) throws IOException {
    Scan s = new Scan();
    if (limit >= 0) {
      s.setLimit(limit);
    }
    try (ResultScanner scanner = t.getScanner(s)) {
      for (Result r : scanner) {
        ObjectNode out = JSON.createObjectNode();
        out.put("row", Bytes.toStringBinary(r.getRow()));
        out.put("row_hex", Bytes.toHex(r.getRow()));
        allCells(r, out.putArray("cells"));
        emit(out);
      }
    }
  }

  /** Every latest cell of a row, raw: qualifiers as Bytes.toStringBinary, values as hex. */
  private static void allCells(Result r, ArrayNode cells) {
    if (r.isEmpty()) {
      return;
    }
    for (Map.Entry<byte[], NavigableMap<byte[], byte[]>> fam : r.getNoVersionMap().entrySet()) {
      for (Map.Entry<byte[], byte[]> q : fam.getValue().entrySet()) {
        Cell found = r.getColumnLatestCell(fam.getKey(), q.getKey());
        cells.addObject()
            .put("family", Bytes.toString(fam.getKey()))
            .put("qualifier", Bytes.toStringBinary(q.getKey()))
            .put("codec", "raw")
            .put("value", Bytes.toHex(q.getValue()))
            .put("hex", Bytes.toHex(q.getValue()))
            .put("ts", found.getTimestamp());
      }
    }
  }

  // ------------------------------------------------------------------ codecs

  private static final List<String> CODECS = List.of("int16", "int32", "int64", "float32",
      "float64", "bool", "utf8", "raw", "text", "epoch_millis", "epoch_seconds", "iso8601",
      "composite");

  private static void checkCodec(String codec, String at) throws InputError {
    if (!CODECS.contains(codec)) {
      throw new InputError(at + ": unknown codec '" + codec + "' (known: "
          + String.join(", ", CODECS) + ")");
    }
  }

  /** The bytes a Java service writes for VALUE as CODEC: Bytes.toBytes of the Java type. */
  static byte[] encode(String codec, JsonNode value, String at) throws InputError {
    checkCodec(codec, at);
    if (value == null || value.isNull()) {
      throw new InputError(at + ": missing \"value\" for codec " + codec);
    }
    switch (codec) {
      case "int16":
        return Bytes.toBytes((short) integral(value, Short.MIN_VALUE, Short.MAX_VALUE, codec, at));
      case "int32":
        return Bytes.toBytes((int) integral(value, Integer.MIN_VALUE, Integer.MAX_VALUE, codec, at));
      case "int64":
      case "epoch_millis":
      case "epoch_seconds":
        return Bytes.toBytes(integral(value, Long.MIN_VALUE, Long.MAX_VALUE, codec, at));
      case "float32":
        return Bytes.toBytes((float) number(value, codec, at));
      case "float64":
        return Bytes.toBytes(number(value, codec, at));
      case "bool":
        if (!value.isBoolean()) {
          throw new InputError(at + ": codec bool needs true or false, got " + value);
        }
        return Bytes.toBytes(value.booleanValue());
      case "raw": {
        String hex = value.isTextual() ? value.textValue() : "";
        if (!value.isTextual() || hex.length() % 2 != 0 || !hex.matches("[0-9a-fA-F]*")) {
          throw new InputError(at + ": codec raw needs a hex string of even length, got " + value);
        }
        return Bytes.fromHex(hex);
      }
      case "text":
        // decimal text, as the HBase shell writes values: put 't', 'r', 'f:age', '36'
        if (value.isIntegralNumber()) {
          return Bytes.toBytes(String.valueOf(value.bigIntegerValue()));
        }
        if (value.isNumber()) {
          return Bytes.toBytes(String.valueOf(value.doubleValue()));
        }
        if (value.isBoolean()) {
          return Bytes.toBytes(String.valueOf(value.booleanValue()));
        }
        return Bytes.toBytes(string(value, codec, at));
      default: // utf8, iso8601, composite (pre-joined)
        return Bytes.toBytes(string(value, codec, at));
    }
  }

  /** Reads BYTES back the way a Java service does, into O's "value". */
  static void decode(String codec, byte[] bytes, ObjectNode o) {
    switch (codec) {
      case "int16":
        o.put("value", Bytes.toShort(bytes));
        break;
      case "int32":
        o.put("value", Bytes.toInt(bytes));
        break;
      case "int64":
      case "epoch_millis":
      case "epoch_seconds":
        o.put("value", Bytes.toLong(bytes));
        break;
      case "float32":
        o.put("value", Bytes.toFloat(bytes));
        break;
      case "float64":
        o.put("value", Bytes.toDouble(bytes));
        break;
      case "bool":
        o.put("value", Bytes.toBoolean(bytes));
        break;
      case "raw":
        o.put("value", Bytes.toHex(bytes));
        break;
      default: // utf8, text, iso8601, composite
        o.put("value", Bytes.toString(bytes));
    }
  }

  private static long integral(JsonNode v, long min, long max, String codec, String at)
      throws InputError {
    if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < min
        || v.longValue() > max) {
      throw new InputError(at + ": codec " + codec + " needs an integer in [" + min + ", " + max
          + "], got " + v);
    }
    return v.longValue();
  }

  /** A JSON number as a double; float32 narrows it like Java's (float) cast. */
  private static double number(JsonNode v, String codec, String at) throws InputError {
    if (v.isTextual()) {
      switch (v.textValue()) {
        case "NaN":
          return Double.NaN;
        case "Infinity":
          return Double.POSITIVE_INFINITY;
        case "-Infinity":
          return Double.NEGATIVE_INFINITY;
        default:
      }
    }
    if (!v.isNumber()) {
      throw new InputError(at + ": codec " + codec
          + " needs a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got " + v);
    }
    return v.doubleValue();
  }

  private static String string(JsonNode v, String codec, String at) throws InputError {
    if (!v.isTextual()) {
      throw new InputError(at + ": codec " + codec + " needs a string, got " + v);
    }
    return v.textValue();
  }

  /** ROW: a JSON string (UTF-8) or {"codec", "value"[, "sep"]}. */
  static byte[] rowKey(JsonNode spec, String at) throws InputError {
    String where = at + " row";
    if (spec == null || spec.isNull()) {
      throw new InputError(at + ": missing \"row\"");
    }
    if (spec.isTextual()) {
      return Bytes.toBytes(spec.textValue());
    }
    if (!spec.isObject()) {
      throw new InputError(where + ": expected a string or {\"codec\", \"value\"}, got " + spec);
    }
    String codec = text(spec, "codec", where);
    JsonNode value = spec.get("value");
    if (codec.equals("composite") && value != null && value.isArray()) {
      JsonNode sep = spec.get("sep");
      if (sep == null || !sep.isTextual()) {
        throw new InputError(where + ": a composite list needs \"sep\", e.g. \"#\"");
      }
      List<String> parts = new ArrayList<>();
      for (JsonNode part : value) {
        parts.add(string(part, codec, where));
      }
      return Bytes.toBytes(String.join(sep.textValue(), parts));
    }
    byte[] key = encode(codec, value, where);
    if (key.length == 0) {
      throw new InputError(where + ": an HBase row key cannot be empty");
    }
    return key;
  }

  // ------------------------------------------------------------------ plumbing

  private static List<JsonNode> readLines() throws IOException, InputError {
    List<JsonNode> lines = new ArrayList<>();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    int n = 0;
    while ((line = in.readLine()) != null) {
      n++;
      if (line.isBlank()) {
        continue;
      }
      try {
        lines.add(JSON.readTree(line));
      } catch (IOException e) {
        throw new InputError("line " + n + ": not JSON: " + e.getMessage().split("\n")[0]);
      }
    }
    return lines;
  }

  private static JsonNode object(JsonNode line, String at) throws InputError {
    if (!line.isObject()) {
      throw new InputError(at + ": expected a JSON object, got " + line);
    }
    return line;
  }

  private static String column(JsonNode cell, String at) throws InputError {
    if (!cell.isObject()) {
      throw new InputError(at + ": a cell is {\"family\", \"qualifier\", ...}, got " + cell);
    }
    return text(cell, "family", at) + ":" + text(cell, "qualifier", at);
  }

  private static String text(JsonNode node, String field, String at) throws InputError {
    JsonNode v = node.get(field);
    if (v == null || !v.isTextual()) {
      throw new InputError(at + ": \"" + field + "\" must be a string, got " + v);
    }
    return v.textValue();
  }

  private static Long timestamp(JsonNode v, String at) throws InputError {
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
      throw new InputError(at + ": \"ts\" must be a non-negative integer, got " + v);
    }
    return v.longValue();
  }

  private static int parseSplits(List<String> args, List<byte[]> splits) throws InputError {
    int regions = Integer.parseInt(option(args, "--splits", "0"));
    String spec;
    while ((spec = option(args, "--split", null)) != null) {
      int colon = spec.indexOf(':');
      if (colon < 1) {
        throw new InputError("--split " + spec + ": expected CODEC:VALUE, e.g. utf8:m or raw:80");
      }
      String codec = spec.substring(0, colon);
      String value = spec.substring(colon + 1);
      JsonNode node = codec.startsWith("int") ? JSON.getNodeFactory().numberNode(Long.parseLong(value))
          : JSON.getNodeFactory().textNode(value);
      splits.add(encode(codec, node, "--split " + spec));
    }
    if (regions > 1 && !splits.isEmpty()) {
      throw new InputError("give --splits N or --split keys, not both");
    }
    return regions;
  }

  /** N regions evenly over the 8-byte key space, as RegionSplitter's UniformSplit does. */
  private static byte[][] uniformSplits(int regions) {
    byte[] last = new byte[8];
    java.util.Arrays.fill(last, (byte) 0xff);
    byte[][] keys = Bytes.split(new byte[8], last, regions - 1);
    return java.util.Arrays.copyOfRange(keys, 1, keys.length - 1);
  }

  /** Removes "NAME VALUE" from ARGS and returns VALUE, else DEFAULT. */
  private static String option(List<String> args, String name, String dflt) throws InputError {
    int i = args.indexOf(name);
    if (i < 0) {
      return dflt;
    }
    if (i + 1 >= args.size()) {
      throw new InputError(name + " needs a value");
    }
    String v = args.get(i + 1);
    args.subList(i, i + 2).clear();
    return v;
  }

  private static void noArgs(List<String> rest) throws InputError {
    if (!rest.isEmpty()) {
      throw new InputError("unexpected arguments " + rest + " (rows come on stdin)");
    }
  }

  private static String env(String name, String dflt) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? dflt : v;
  }

  private static void emit(JsonNode node) throws IOException {
    OUT.println(JSON.writeValueAsString(node));
  }
}
