/*
 * CheckAndMutateSidecar: HBase's batched checkAndMutate behind a small TCP protocol.
 *
 * The Thrift2 gateway offers one conditional row write per RPC; the Java client's
 * Table.checkAndMutate(List<CheckAndMutate>) sends a whole batch in one multi-action RPC per
 * region server. culvert_py's HBase store uses this process, when configured and reachable,
 * for Table.check_and_mutate_many; without it the store makes the same writes one Thrift2
 * call per row. Both paths must apply exactly the same cells, so this mirrors how the Thrift2
 * gateway (ThriftUtilities) turns culvert_py's TRowMutations into Java mutations:
 *
 *   - every put cell carries the batch timestamp (Put(row, ts).addColumn(f, q, ts, v));
 *   - a deleted column is Delete.addColumns(f, q, ts): every version at or below ts
 *     (Thrift2 DELETE_COLUMNS with a timestamp);
 *   - a deleted family ("f:" or "f") is Delete.addFamily(f, ts) (Thrift2 DELETE_FAMILY);
 *   - the check is "cell equals bytes" (CompareOperator.EQUAL) or "cell absent"
 *     (ifNotExists; Thrift2 checkAndPut with a null value).
 *
 * Protocol (all integers big-endian; one request, one reply, many per connection):
 *
 *   request  = u32 length, then `length` bytes:
 *              u8 version (1), u8 op
 *              op 0 PING:  nothing more; reply OK with zero items
 *              op 1 CHECK_AND_MUTATE:
 *                u16 table length, table name (UTF-8)
 *                i64 timestamp
 *                u32 item count, then per item:
 *                  u32 row length, u16 check column length, row, check column
 *                    ("family:qualifier")
 *                  i32 expected length (-1: the cell must be absent), expected bytes
 *                  u16 put count, per put: u16 column length, u32 value length, column, value
 *                  u16 delete count, per delete: u16 column length, column
 *                    ("f:q" one column, "f:" or "f" the whole family)
 *   reply    = u32 length, then `length` bytes: u8 status, then
 *              status 0 OK:          u32 item count, ceil(count / 8) bytes: bit i (byte i/8,
 *                                    bit i%8, least significant first) set if item i applied
 *              status 1 REFUSED:     UTF-8 message (a malformed request, an unknown table or
 *                                    family: retrying elsewhere gives the same answer)
 *              status 2 UNAVAILABLE: UTF-8 message (HBase did not answer in time: some items
 *                                    may have been applied, the client retries the batch)
 *
 * Limits: a request of at most 16 MiB (-Dculvert.sidecar.max.request) and 100 000 items, and
 * at most 96 MiB of requests in memory at once (-Dculvert.sidecar.max.buffered; a reader
 * waits for room); a connection idle for 10 minutes is closed; at most 64 connections are
 * served at once (one thread each), others get an UNAVAILABLE reply and are closed. One HBase Connection
 * (thread-safe) serves every request; it finds the cluster through ZooKeeper as configured by
 * the hbase-site.xml on the classpath.
 *
 * Usage: java -cp CONF:JAR:HBASE_JARS CheckAndMutateSidecar [--bind HOST] [--port N]
 */

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.DoNotRetryIOException;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.CheckAndMutate;
import org.apache.hadoop.hbase.client.CheckAndMutateResult;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.Delete;
import org.apache.hadoop.hbase.client.Put;
import org.apache.hadoop.hbase.client.RetriesExhaustedWithDetailsException;
import org.apache.hadoop.hbase.client.RowMutations;
import org.apache.hadoop.hbase.client.Table;

public final class CheckAndMutateSidecar {
  static final int VERSION = 1;
  static final int OP_PING = 0;
  static final int OP_CHECK_AND_MUTATE = 1;
  static final int OK = 0;
  static final int REFUSED = 1;
  static final int UNAVAILABLE = 2;

  static final int MAX_REQUEST = Integer.getInteger("culvert.sidecar.max.request", 16 << 20);
  static final int MAX_BUFFERED = Integer.getInteger("culvert.sidecar.max.buffered", 96 << 20);
  /** Bytes of request bodies held at once: many large requests wait instead of exhausting
   * the heap. */
  static final Semaphore BUFFERED = new Semaphore(Math.max(MAX_BUFFERED, MAX_REQUEST));
  static final int MAX_ITEMS = 100_000;
  static final int IDLE_MS = Integer.getInteger("culvert.sidecar.idle.ms", 600_000);
  static final int MAX_CONNECTIONS = Integer.getInteger("culvert.sidecar.max.connections", 64);

  /** A request the sidecar will not act on: answered REFUSED, the connection kept. */
  static final class Refused extends Exception {
    Refused(String message) {
      super(message);
    }
  }

  private final Connection hbase;
  private final AtomicLong requests = new AtomicLong();

  CheckAndMutateSidecar(Connection hbase) {
    this.hbase = hbase;
  }

  public static void main(String[] args) throws Exception {
    String bind = "127.0.0.1";
    int port = 9089;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--bind") && i + 1 < args.length) {
        bind = args[++i];
      } else if (args[i].equals("--port") && i + 1 < args.length) {
        port = Integer.parseInt(args[++i]);
      } else {
        System.err.println("usage: CheckAndMutateSidecar [--bind HOST] [--port N]");
        System.exit(2);
      }
    }
    Configuration conf = HBaseConfiguration.create();
    // Bounded: a batch that HBase cannot apply within a minute is answered UNAVAILABLE (the
    // client then falls back to per-row Thrift2 calls) instead of hanging its caller.
    conf.setIfUnset("hbase.client.operation.timeout", "60000");
    conf.setIfUnset("hbase.rpc.timeout", "30000");
    Connection hbase = ConnectionFactory.createConnection(conf);
    CheckAndMutateSidecar sidecar = new CheckAndMutateSidecar(hbase);
    Semaphore slots = new Semaphore(MAX_CONNECTIONS);
    ExecutorService threads = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "sidecar-conn");
      t.setDaemon(true);
      return t;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        hbase.close();
      } catch (IOException e) {
        // exiting anyway
      }
    }));
    try (ServerSocket server = new ServerSocket(port, 128, InetAddress.getByName(bind))) {
      System.out.println("sidecar listening on " + bind + ":" + port);
      System.out.flush();
      while (true) {
        Socket socket = server.accept();
        if (!slots.tryAcquire()) {
          threads.execute(() -> sidecar.turnAway(socket));
          continue;
        }
        threads.execute(() -> {
          try {
            sidecar.serve(socket);
          } finally {
            slots.release();
          }
        });
      }
    }
  }

  void turnAway(Socket socket) {
    try (Socket s = socket) {
      s.setSoTimeout(5000);
      reply(new DataOutputStream(s.getOutputStream()), UNAVAILABLE,
          "sidecar: too many connections (" + MAX_CONNECTIONS + ")");
    } catch (IOException e) {
      // the client sees a closed connection and goes elsewhere
    }
  }

  void serve(Socket socket) {
    try (Socket s = socket) {
      s.setTcpNoDelay(true);
      s.setSoTimeout(IDLE_MS);
      DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
      DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
      while (true) {
        int length;
        try {
          length = in.readInt();
        } catch (EOFException | SocketTimeoutException e) {
          return; // the client closed the connection, or left it idle
        }
        if (length < 2 || length > MAX_REQUEST) {
          // The stream cannot be resynchronised after a bad length: answer and close.
          reply(out, REFUSED, "sidecar: request length " + length + " outside [2, " + MAX_REQUEST + "]");
          return;
        }
        BUFFERED.acquireUninterruptibly(length);
        try {
          byte[] body = new byte[length];
          in.readFully(body);
          handle(body, out);
        } finally {
          BUFFERED.release(length);
        }
      }
    } catch (IOException e) {
      // a broken connection: the client retries elsewhere
    }
  }

  void handle(byte[] body, DataOutputStream out) throws IOException {
    requests.incrementAndGet();
    Reader r = new Reader(body);
    String table = "?";
    try {
      int version = r.u8();
      int op = r.u8();
      if (version != VERSION) {
        throw new Refused("sidecar: protocol version " + version + " (this sidecar speaks " + VERSION + ")");
      }
      if (op == OP_PING) {
        r.end();
        replyBits(out, new boolean[0]);
        return;
      }
      if (op != OP_CHECK_AND_MUTATE) {
        throw new Refused("sidecar: unknown operation " + op);
      }
      table = new String(r.bytes(r.u16()), StandardCharsets.UTF_8);
      long ts = r.i64();
      if (ts < 0 || ts == Long.MAX_VALUE) {
        throw new Refused("sidecar: timestamp " + ts + " outside [0, 2**63-1)");
      }
      long count = r.u32();
      if (count > MAX_ITEMS) {
        throw new Refused("sidecar: " + count + " items in one request (at most " + MAX_ITEMS + ")");
      }
      List<CheckAndMutate> batch = new ArrayList<>((int) count);
      for (int i = 0; i < count; i++) {
        batch.add(item(r, ts));
      }
      r.end();
      boolean[] applied = new boolean[batch.size()];
      if (!batch.isEmpty()) {
        try (Table t = hbase.getTable(TableName.valueOf(table))) {
          List<CheckAndMutateResult> results = t.checkAndMutate(batch);
          for (int i = 0; i < applied.length; i++) {
            applied[i] = results.get(i).isSuccess();
          }
        }
      }
      replyBits(out, applied);
    } catch (Refused e) {
      reply(out, REFUSED, e.getMessage());
    } catch (IllegalArgumentException e) {
      reply(out, REFUSED, "sidecar: table " + table + ": " + e.getMessage());
    } catch (IOException e) {
      reply(out, permanent(e) ? REFUSED : UNAVAILABLE, "sidecar: table " + table + ": " + firstLine(e));
    } catch (RuntimeException e) {
      reply(out, UNAVAILABLE, "sidecar: table " + table + ": " + firstLine(e));
    }
  }

  /** One item of a CHECK_AND_MUTATE request as the Java client's CheckAndMutate. */
  static CheckAndMutate item(Reader r, long ts) throws Refused {
    int rowLength = (int) r.u32();
    int checkLength = r.u16();
    byte[] row = r.bytes(rowLength);
    if (row.length == 0) {
      throw new Refused("sidecar: empty row key");
    }
    byte[][] check = column(r.bytes(checkLength));
    int expectedLength = r.i32();
    byte[] expected = expectedLength < 0 ? null : r.bytes(expectedLength);
    int puts = r.u16();
    if (puts == 0) {
      throw new Refused("sidecar: an item needs at least one put");
    }
    Put put = new Put(row, ts);
    for (int i = 0; i < puts; i++) {
      int columnLength = r.u16();
      int valueLength = (int) r.u32();
      byte[][] col = column(r.bytes(columnLength));
      byte[] value = r.bytes(valueLength);
      if (col[1] == null) {
        throw new Refused("sidecar: a put needs family:qualifier");
      }
      put.addColumn(col[0], col[1], ts, value);
    }
    int deletes = r.u16();
    Delete delete = deletes > 0 ? new Delete(row) : null;
    for (int i = 0; i < deletes; i++) {
      byte[][] col = column(r.bytes(r.u16()));
      if (col[1] == null) {
        delete.addFamily(col[0], ts);
      } else {
        delete.addColumns(col[0], col[1], ts);
      }
    }
    CheckAndMutate.Builder builder = CheckAndMutate.newBuilder(row);
    builder = expected == null
        ? builder.ifNotExists(check[0], check[1] == null ? new byte[0] : check[1])
        : builder.ifEquals(check[0], check[1] == null ? new byte[0] : check[1], expected);
    if (delete == null) {
      return builder.build(put);
    }
    try {
      RowMutations mutations = new RowMutations(row, 2);
      mutations.add(delete);
      mutations.add(put);
      return builder.build(mutations);
    } catch (IOException e) {
      throw new Refused("sidecar: " + e.getMessage());
    }
  }

  /** {family, qualifier} of "f:q"; {family, null} for "f:" or "f" (a whole family). */
  static byte[][] column(byte[] name) throws Refused {
    int colon = -1;
    for (int i = 0; i < name.length; i++) {
      if (name[i] == ':') {
        colon = i;
        break;
      }
    }
    if (colon == 0 || name.length == 0) {
      throw new Refused("sidecar: column with no family");
    }
    if (colon < 0) {
      return new byte[][] {name, null};
    }
    byte[] family = java.util.Arrays.copyOfRange(name, 0, colon);
    byte[] qualifier = java.util.Arrays.copyOfRange(name, colon + 1, name.length);
    return new byte[][] {family, qualifier.length == 0 ? null : qualifier};
  }

  /** A failure that another attempt would meet again (no such table, family, bad request). */
  static boolean permanent(IOException e) {
    if (e instanceof RetriesExhaustedWithDetailsException) {
      List<Throwable> causes = ((RetriesExhaustedWithDetailsException) e).getCauses();
      return !causes.isEmpty() && causes.stream().allMatch(c -> c instanceof DoNotRetryIOException);
    }
    return e instanceof DoNotRetryIOException;
  }

  static String firstLine(Throwable e) {
    String text = e.toString();
    int nl = text.indexOf('\n');
    text = nl < 0 ? text : text.substring(0, nl);
    return text.length() > 500 ? text.substring(0, 500) : text;
  }

  static void replyBits(DataOutputStream out, boolean[] applied) throws IOException {
    byte[] bits = new byte[(applied.length + 7) / 8];
    for (int i = 0; i < applied.length; i++) {
      if (applied[i]) {
        bits[i >> 3] |= (byte) (1 << (i & 7));
      }
    }
    out.writeInt(1 + 4 + bits.length);
    out.writeByte(OK);
    out.writeInt(applied.length);
    out.write(bits);
    out.flush();
  }

  static void reply(DataOutputStream out, int status, String message) throws IOException {
    byte[] text = message.getBytes(StandardCharsets.UTF_8);
    out.writeInt(1 + text.length);
    out.writeByte(status);
    out.write(text);
    out.flush();
  }

  /** Bounds-checked reads from one request body; running past its end is REFUSED. */
  static final class Reader {
    private final byte[] b;
    private int at;

    Reader(byte[] body) {
      this.b = body;
    }

    private void need(int n) throws Refused {
      if (n < 0 || at + n > b.length) {
        throw new Refused("sidecar: truncated request (" + n + " bytes wanted at offset " + at + " of " + b.length + ")");
      }
    }

    int u8() throws Refused {
      need(1);
      return b[at++] & 0xff;
    }

    int u16() throws Refused {
      need(2);
      int v = ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff);
      at += 2;
      return v;
    }

    int i32() throws Refused {
      need(4);
      int v = ((b[at] & 0xff) << 24) | ((b[at + 1] & 0xff) << 16) | ((b[at + 2] & 0xff) << 8) | (b[at + 3] & 0xff);
      at += 4;
      return v;
    }

    long u32() throws Refused {
      return i32() & 0xffffffffL;
    }

    long i64() throws Refused {
      long hi = u32();
      long lo = u32();
      return (hi << 32) | lo;
    }

    byte[] bytes(int n) throws Refused {
      need(n);
      byte[] out = java.util.Arrays.copyOfRange(b, at, at + n);
      at += n;
      return out;
    }

    void end() throws Refused {
      if (at != b.length) {
        throw new Refused("sidecar: " + (b.length - at) + " stray bytes after the request");
      }
    }
  }
}
