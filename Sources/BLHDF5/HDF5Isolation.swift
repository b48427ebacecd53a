#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import BLCore
import CHDF5

/// libhdf5 is not hardened against corrupt files: crafted or damaged metadata can crash it or
/// make it loop forever. Reads therefore run in a separate process that sends the contents back
/// through a pipe; this process never calls libhdf5 for a read, and turns a crash into a
/// `BLError` and a hang into a timeout.
///
/// The reading process is a fresh one, started with `posix_spawn` (fork + exec), never a bare
/// fork of this process: a fork of a multi-threaded process copies locks other threads held
/// (malloc arenas, runtime caches, OpenBLAS's worker pool) and the copy can wait on them forever.
/// The executable is `blconvert` itself, called with `readerArgument`, which answers through
/// `serveIsolatedReadIfRequested()` at the top of its `main`; see `readerExecutable()` for how it
/// is found. Its stdin and stderr are /dev/null (libhdf5's error stack travels in the answer) and
/// the answer goes to its stdout, prefixed by `wireMagic` so a foreign executable is recognised.
enum HDF5Isolation {
    /// The hidden first argument that turns `blconvert` into an HDF5 reading process. It carries
    /// the wire format's version: an older or newer `blconvert` refuses it as an unknown option.
    static let readerArgument = "--blconvert-hdf5-reader-v1"
    /// The first bytes of every answer.
    static let wireMagic: [UInt8] = Array("BLH5WIRE1\n".utf8)
    /// Names the environment variable that points at the reading executable.
    static let readerEnvironment = "BLCONVERT_HDF5_READER"

    /// Seconds allowed for a file of `bytes` bytes: 30 s plus 1 s per MB (gzip-compressed reads
    /// run well above 50 MB/s).
    static func defaultTimeout(fileSize bytes: Int) -> Double {
        30 + Double(bytes) / 1_000_000
    }

    // MARK: the reading process

    /// Whether this executable's `main` called `serveIfRequested` (it can serve reads itself).
    private static let selfIsReader = Locked(false)

    /// Called first thing by an executable's `main`: when the process was started as a reading
    /// process it reads the file, writes the answer to stdout and exits; otherwise it records that
    /// this executable can serve reads (so later reads spawn it) and returns.
    static func serveIfRequested(arguments: [String]) {
        guard arguments.count == 3, arguments[1] == readerArgument else {
            selfIsReader.withLock { $0 = true }
            return
        }
        let result = Result { try HDF5Library.withLock { try HDF5Reader.readLocked(path: arguments[2]) } }
        var out = WireWriter(fd: 1)
        out.bytes(wireMagic)
        switch result {
        case .success(let contents):
            out.u8(0)
            out.contents(contents)
        case .failure(let error):
            out.u8(1)
            out.error((error as? BLError) ?? BLError(.format, "\(error)"))
        }
        out.flush()
        _exit(out.failed ? 2 : 0)
    }

    /// The executable that serves reads, in this order: the path in `$BLCONVERT_HDF5_READER`; this
    /// executable when its `main` called `serveIsolatedReadIfRequested()` (the `blconvert` CLI);
    /// a `blconvert` beside this executable (a test runner or tool in the same build directory).
    static func readerExecutable() throws -> String {
        if let configured = getenv(readerEnvironment).map({ String(cString: $0) }), !configured.isEmpty {
            guard access(configured, X_OK) == 0 else {
                throw BLError(.io, "$\(readerEnvironment) names '\(configured)', which is not an executable file")
            }
            return configured
        }
        let own = ownExecutable()
        if selfIsReader.withLock({ $0 }), let own { return own }
        if let own, let slash = own.lastIndex(of: "/") {
            let sibling = String(own[..<slash]) + "/blconvert"
            if access(sibling, X_OK) == 0 { return sibling }
        }
        throw BLError(.unsupported, """
            reading HDF5 needs the blconvert executable, which runs libhdf5 in a separate process; \
            none was found beside \(own ?? "this program"): set $\(readerEnvironment) to its path
            """)
    }

    /// The absolute path of the running executable.
    private static func ownExecutable() -> String? {
        #if os(Linux)
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink("/proc/self/exe", $0, b.count - 1) }
        }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
        #else
        var size: UInt32 = 0
        _ = _NSGetExecutablePath(nil, &size)
        var buffer = [CChar](repeating: 0, count: Int(size) + 1)
        guard _NSGetExecutablePath(&buffer, &size) == 0 else { return nil }
        return String(cString: buffer)
        #endif
    }

    // MARK: the asking side

    /// Reads `path` in a reading process (`executable`, by default `readerExecutable()`),
    /// giving up after `timeout` seconds.
    static func run(path: String, timeout: Double, executable: String? = nil) throws -> HDF5Contents {
        let executable = try executable ?? readerExecutable()
        var fds: [Int32] = [-1, -1]
        // Close-on-exec: a read started concurrently on another thread must not inherit this
        // pipe's write end, or this side would never see the end of the answer.
        guard blc_pipe_cloexec(&fds) == 0 else {
            throw BLError(.io, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        defer { close(fds[0]) }
        let pid: pid_t
        do {
            defer { close(fds[1]) }
            pid = try spawn(executable, arguments: [executable, readerArgument, path], answerFD: fds[1])
        }

        var input = WireReader(fd: fds[0], deadline: monotonicSeconds() + timeout)
        let decoded: Result<HDF5Contents, BLError>
        do {
            var magic = [UInt8](repeating: 0, count: wireMagic.count)
            try magic.withUnsafeMutableBytes { try input.fill($0) }
            guard magic == wireMagic else { throw WireReader.Failure.foreign }
            switch try input.u8() {
            case 0: decoded = .success(try input.contents())
            case 1: decoded = .failure(try input.error())
            default: throw WireReader.Failure.corrupt
            }
        } catch let failure as WireReader.Failure {
            switch failure {
            case .timedOut, .foreign: kill(pid, SIGKILL)  // still running: stop it before reaping
            case .ended, .corrupt: break
            }
            let status = reap(pid)
            switch failure {
            case .timedOut:
                throw BLError(.format, "libhdf5 did not finish reading within \(Int(timeout)) s (corrupt file?); stopped")
            case .corrupt:
                throw BLError(.format, "the reading process sent a malformed answer \(describe(status))")
            case .foreign:
                throw BLError(.io, "\(executable) is not a compatible HDF5 reader (a blconvert of another version?)")
            case .ended:
                if let status, status & 0x7f == 0, (status >> 8) & 0xff == 64 || (status >> 8) & 0xff == 127 {
                    throw BLError(.io, "\(executable) did not start as an HDF5 reader \(describe(status)); is it a blconvert of this version?")
                }
            }
            throw BLError(.format, "libhdf5 failed on this file \(describe(status)) without reporting an error (corrupt file?)")
        }
        let status = reap(pid)
        if case .failure(let e) = decoded { throw e }
        guard status == 0 || status == nil, case .success(let contents) = decoded else {
            throw BLError(.format, "the reading process ended \(describe(status))")
        }
        return contents
    }

    /// Starts `executable` with stdin and stderr on /dev/null, stdout on `answerFD` and no other
    /// descriptor of this process.
    private static func spawn(_ executable: String, arguments: [String], answerFD: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else {
            throw BLError(.io, "cannot prepare the reading process")
        }
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, answerFD, 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        #if os(Linux)
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        #endif
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard rc == 0 else {
            throw BLError(.io, "cannot start the HDF5 reader \(executable): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// The child's wait status, or nil when it cannot be known (SIGCHLD ignored by the host process).
    private static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return nil }
        }
        return status
    }

    private static func describe(_ status: Int32?) -> String {
        guard let status else { return "with an unknown status" }
        let signal = status & 0x7f
        if signal != 0 { return "with signal \(signal)\(signal == SIGSEGV ? " (segmentation fault)" : signal == SIGABRT ? " (abort)" : "")" }
        return "with exit status \((status >> 8) & 0xff)"
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

// MARK: wire format (reading process -> asking process)

/// Buffered writes to the pipe; large tensor payloads go straight through.
struct WireWriter {
    let fd: Int32
    var buffer: [UInt8] = []
    var failed = false

    init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    mutating func u8(_ v: UInt8) { buffer.append(v); flushIfFull() }
    mutating func u64(_ v: Int) {
        withUnsafeBytes(of: UInt64(truncatingIfNeeded: v).littleEndian) { buffer.append(contentsOf: $0) }
        flushIfFull()
    }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u64(utf8.count)
        buffer.append(contentsOf: utf8)
        flushIfFull()
    }
    mutating func bytes(_ b: [UInt8]) { buffer.append(contentsOf: b); flushIfFull() }
    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        flush()
        writeAll(bytes)
    }

    mutating func flushIfFull() { if buffer.count >= 1 << 16 { flush() } }

    mutating func flush() {
        let b = buffer
        buffer.removeAll(keepingCapacity: true)
        b.withUnsafeBytes { writeAll($0) }
    }

    private mutating func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard !failed, var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = write(fd, p, left)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failed = true; return }
            p += n
            left -= n
        }
    }

    mutating func error(_ e: BLError) {
        string(e.kind.rawValue)
        string(e.message)
        u8(e.location == nil ? 0 : 1)
        string(e.location ?? "")
    }

    mutating func contents(_ c: HDF5Contents) {
        u64(c.tensors.count)
        for (name, t) in c.tensors {
            string(name)
            string(t.dtype.rawValue)
            u64(t.shape.count)
            for d in t.shape { u64(d) }
            u64(t.byteCount)
            t.withContiguousBytes { raw($0) }
        }
        u64(c.skipped.count)
        for (name, reason) in c.skipped { string(name); string(reason) }
        u64(c.attributes.count)
        for (name, value) in c.attributes { string(name); self.value(value) }
    }

    mutating func value(_ v: Value) {
        switch v {
        case .bool(let b): u8(1); u8(b ? 1 : 0)
        case .int(let i): u8(2); u64(Int(i))
        case .bigInt(let s): u8(3); string(s)
        case .float(let d): u8(4); u64(Int(truncatingIfNeeded: d.bitPattern))
        case .string(let s): u8(5); string(s)
        case .list(let xs): u8(6); u64(xs.count); for x in xs { value(x) }
        default: u8(0)
        }
    }
}

/// Reads the child's answer with a deadline; every count is checked before allocating.
struct WireReader {
    enum Failure: Error { case timedOut, ended, corrupt, foreign }

    let fd: Int32
    let deadline: Double
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var start = 0, end = 0

    init(fd: Int32, deadline: Double) {
        self.fd = fd
        self.deadline = deadline
    }

    /// Fills `dst` completely from the buffer and then the pipe.
    mutating func fill(_ dst: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < dst.count {
            if start < end {
                let n = min(end - start, dst.count - done)
                buffer.withUnsafeBytes { src in
                    (dst.baseAddress! + done).copyMemory(from: src.baseAddress! + start, byteCount: n)
                }
                start += n
                done += n
                continue
            }
            try waitReadable()
            let want = dst.count - done
            if want >= buffer.count {
                // Large payloads go straight into their destination.
                let n = read(fd, dst.baseAddress! + done, want)
                if n < 0 { if errno == EINTR { continue }; throw Failure.ended }
                if n == 0 { throw Failure.ended }
                done += n
            } else {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw Failure.ended }
                if n == 0 { throw Failure.ended }
                start = 0
                end = n
            }
        }
    }

    private func waitReadable() throws {
        while true {
            let left = deadline - HDF5Isolation.monotonicSeconds()
            if left <= 0 { throw Failure.timedOut }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw Failure.ended }
        }
    }

    mutating func u8() throws -> UInt8 {
        var v: UInt8 = 0
        try withUnsafeMutableBytes(of: &v) { try fill($0) }
        return v
    }

    mutating func u64() throws -> UInt64 {
        var v: UInt64 = 0
        try withUnsafeMutableBytes(of: &v) { try fill($0) }
        return UInt64(littleEndian: v)
    }

    mutating func count(max: Int = 1 << 40) throws -> Int {
        let v = try u64()
        guard v <= UInt64(max) else { throw Failure.corrupt }
        return Int(v)
    }

    mutating func string() throws -> String {
        var bytes = [UInt8](repeating: 0, count: try count(max: 1 << 30))
        try bytes.withUnsafeMutableBytes { try fill($0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func error() throws -> BLError {
        let kind = BLError.Kind(rawValue: try string()) ?? .format
        let message = try string()
        let hasLocation = try u8() == 1
        let location = try string()
        return BLError(kind, message, location: hasLocation ? location : nil)
    }

    mutating func contents() throws -> HDF5Contents {
        var c = HDF5Contents()
        for _ in 0..<(try count()) {
            let name = try string()
            guard let dtype = DType(rawValue: try string()) else { throw Failure.corrupt }
            var shape: [Int] = []
            for _ in 0..<(try count(max: 64)) { shape.append(try count()) }
            let bytes = try count()
            guard let n = try? Tensor.checkedCount(shape), n * dtype.byteSize == bytes else { throw Failure.corrupt }
            let storage = try ByteStorage.allocate(count: bytes) { try fill($0) }
            guard let t = try? Tensor(dtype: dtype, shape: shape, storage: storage) else { throw Failure.corrupt }
            c.tensors.append((name, t))
        }
        for _ in 0..<(try count()) { c.skipped.append((try string(), try string())) }
        for _ in 0..<(try count()) { c.attributes.append((try string(), try value(depth: 0))) }
        return c
    }

    mutating func value(depth: Int) throws -> Value {
        guard depth < 8 else { throw Failure.corrupt }
        switch try u8() {
        case 0: return .none
        case 1: return .bool(try u8() != 0)
        case 2: return .int(Int64(bitPattern: try u64()))
        case 3: return .bigInt(try string())
        case 4: return .float(Double(bitPattern: try u64()))
        case 5: return .string(try string())
        case 6:
            var xs: [Value] = []
            for _ in 0..<(try count(max: 1 << 24)) { xs.append(try value(depth: depth + 1)) }
            return .list(xs)
        default: throw Failure.corrupt
        }
    }
}
