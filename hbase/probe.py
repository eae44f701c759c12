#!/usr/bin/env python3
"""Readiness probe for the local dev/test HBase, standard library only.

    probe.py zk      [HOST] [PORT]   ZooKeeper four-letter word "ruok" -> "imok"
    probe.py thrift1 [HOST] [PORT]   Thrift1 Hbase.getTableNames() (master path)
    probe.py thrift2 [HOST] [PORT]   Thrift2 THBaseService.getTableNamesByPattern(
                                     includeSysTables=true) and exists("hbase:meta", row)
                                     (master path + a region server read)
    probe.py sidecar [HOST] [PORT]   culvert's checkAndMutate sidecar: a PING request
                                     (hbase/sidecar/CheckAndMutateSidecar.java) -> OK

Thrift calls use the binary protocol over a plain (buffered, unframed) socket: the
happybase defaults, and what hbase/hbase-local starts both gateways with.
Options: --timeout SECONDS (socket timeout, default 10), --quiet.
Exit 0 when the service answered correctly, 1 otherwise (reason on stderr).
"""

import socket
import struct
import sys

DEFAULT_PORTS = {"zk": 2181, "thrift1": 9090, "thrift2": 9091, "sidecar": 9089}

# Thrift binary protocol type ids
T_STOP, T_BOOL, T_BYTE, T_DOUBLE = 0, 2, 3, 4
T_I16, T_I32, T_I64, T_STRING = 6, 8, 10, 11
T_STRUCT, T_MAP, T_SET, T_LIST = 12, 13, 14, 15
VERSION_1 = 0x80010000
CALL, REPLY, EXCEPTION = 1, 2, 3


class ProbeError(Exception):
    pass


class Reader:
    def __init__(self, sock):
        self.sock = sock

    def exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ProbeError("connection closed by server")
            buf += chunk
        return buf

    def unpack(self, fmt):
        return struct.unpack(fmt, self.exact(struct.calcsize(fmt)))[0]

    def string(self):
        return self.exact(self.unpack(">i"))

    def value(self, ttype):
        """Read one value of ttype; structs come back as {field_id: value}."""
        fixed = {T_BOOL: "?", T_BYTE: "b", T_DOUBLE: ">d", T_I16: ">h", T_I32: ">i", T_I64: ">q"}
        if ttype in fixed:
            return self.unpack(fixed[ttype])
        if ttype == T_STRING:
            return self.string()
        if ttype == T_STRUCT:
            fields = {}
            while True:
                ftype = self.unpack("b")
                if ftype == T_STOP:
                    return fields
                fid = self.unpack(">h")
                fields[fid] = self.value(ftype)
        if ttype in (T_LIST, T_SET):
            etype, size = self.unpack("b"), self.unpack(">i")
            return [self.value(etype) for _ in range(size)]
        if ttype == T_MAP:
            ktype, vtype, size = self.unpack("b"), self.unpack("b"), self.unpack(">i")
            return {self.value(ktype): self.value(vtype) for _ in range(size)}
        raise ProbeError(f"unknown thrift type {ttype} in reply")


def t_string(fid, data):
    if isinstance(data, str):
        data = data.encode()
    return struct.pack(">bhi", T_STRING, fid, len(data)) + data


def t_bool(fid, value):
    return struct.pack(">bh?", T_BOOL, fid, value)


def t_struct(fid, body):
    return struct.pack(">bh", T_STRUCT, fid) + body + bytes([T_STOP])


def call(host, port, timeout, method, args, seqid=1):
    """Send one CALL and return the result struct as {field_id: value}."""
    name = method.encode()
    frame = struct.pack(">Ii", VERSION_1 | CALL, len(name)) + name + struct.pack(">i", seqid)
    frame += args + bytes([T_STOP])
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(frame)
        rd = Reader(sock)
        version = rd.unpack(">I")
        if version & 0xFFFF0000 != VERSION_1:
            raise ProbeError(f"not a thrift binary-protocol reply (0x{version:08x})")
        mtype = version & 0xFF
        rname = rd.string().decode(errors="replace")
        rseq = rd.unpack(">i")
        body = rd.value(T_STRUCT)
    if mtype == EXCEPTION:
        raise ProbeError(
            "{}: application exception: {}".format(
                method, body.get(1, b"").decode(errors="replace")
            )
        )
    if mtype != REPLY or rname != method or rseq != seqid:
        raise ProbeError(f"unexpected reply (type {mtype}, name {rname!r}, seq {rseq})")
    if 1 in body:  # the declared IOError / TIOError
        err = body[1].get(1, b"")
        raise ProbeError("{}: server error: {}".format(method, err.decode(errors="replace")[:300]))
    return body


def probe_zk(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"ruok")
        answer = b""
        while True:
            chunk = sock.recv(64)
            if not chunk:
                break
            answer += chunk
    if answer != b"imok":
        raise ProbeError(f"zookeeper answered {answer!r} to ruok")
    return "imok"


def probe_thrift1(host, port, timeout):
    body = call(host, port, timeout, "getTableNames", b"")
    if 0 not in body:
        raise ProbeError("getTableNames: reply without a result")
    return f"getTableNames -> {len(body[0])} user table(s)"


def probe_thrift2(host, port, timeout):
    body = call(host, port, timeout, "getTableNamesByPattern", t_bool(2, True))
    tables = body.get(0) or []
    if not tables:
        raise ProbeError("getTableNamesByPattern: no tables listed (master not ready)")
    # a read served by the region server that hosts hbase:meta
    args = t_string(1, "hbase:meta") + t_struct(2, t_string(1, "culvert-hbase-local-probe"))
    body = call(host, port, timeout, "exists", args, seqid=2)
    if 0 not in body:
        raise ProbeError("exists: reply without a result")
    return f"getTableNamesByPattern -> {len(tables)} table(s); exists(hbase:meta) answered"


def probe_sidecar(host, port, timeout):
    # u32 length, u8 protocol version 1, u8 op 0 (PING); the reply: u32 length, u8 status 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">IBB", 2, 1, 0))
        rd = Reader(sock)
        length = rd.unpack(">I")
        body = rd.exact(length)
    if body[:1] != b"\x00":
        raise ProbeError(f"sidecar answered {body[1:200].decode(errors='replace')!r}")
    return "PING -> OK"


PROBES = {
    "zk": probe_zk,
    "thrift1": probe_thrift1,
    "thrift2": probe_thrift2,
    "sidecar": probe_sidecar,
}


def main(argv):
    timeout, quiet, rest = 10.0, False, []
    it = iter(argv)
    for arg in it:
        if arg == "--timeout":
            timeout = float(next(it))
        elif arg == "--quiet":
            quiet = True
        else:
            rest.append(arg)
    if not rest or rest[0] not in PROBES or len(rest) > 3:
        sys.stderr.write(__doc__)
        return 2
    kind = rest[0]
    host = rest[1] if len(rest) > 1 else "127.0.0.1"
    port = int(rest[2]) if len(rest) > 2 else DEFAULT_PORTS[kind]
    try:
        result = PROBES[kind](host, port, timeout)
    except (OSError, ProbeError, struct.error) as exc:
        if not quiet:
            sys.stderr.write(f"{kind} {host}:{port}: {exc}\n")
        return 1
    if not quiet:
        print(f"{kind} {host}:{port}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
