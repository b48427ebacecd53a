import BLCore
import CSpawn

/// libhdf5 is not hardened against corrupt files: crafted or damaged metadata can crash it or
/// make it loop forever. Reads therefore run in a separate process, the small
/// `blconvert-hdf5-reader` executable, which sends the contents back through a pipe; the asking
/// process never links libhdf5, turns a crash into a `BLError` and a hang into a timeout.
///
/// The reading process is a fresh one, started with `posix_spawn` (fork + exec), never a bare
/// fork of this process: a fork of a multi-threaded process copies locks other threads held
/// (malloc arenas, runtime caches, OpenBLAS's worker pool) and the copy can wait on them forever.
/// Its stdin and stderr are /dev/null (libhdf5's error stack travels in the answer) and the
/// answer goes to its stdout, prefixed by `HDF5Wire.magic` so a foreign executable is recognised.
///
/// The child is not trusted either: everything it sends is checked against a byte budget
/// bounded by the file's size (`HDF5Reader.byteLimit`), before anything is allocated, and on
/// every path out of `run` the child is reaped, killed first when it has not ended in time.
package enum HDF5Isolation {
    /// The reading executable's file name, looked for beside the running executable.
    package static let readerName = "blconvert-hdf5-reader"
    /// The first argument the reader expects. It carries the wire format's version: a reader of
    /// another version refuses it, and its answer would not start with the expected magic.
    package static let readerArgument = "--blconvert-hdf5-reader-v2"
    /// Names the environment variable that points at the reading executable.
    package static let readerEnvironment = "BLCONVERT_HDF5_READER"

    /// Seconds allowed for a file of `bytes` bytes: 30 s plus 1 s per MB (gzip-compressed reads
    /// run well above 50 MB/s).
    package static func defaultTimeout(fileSize bytes: Int) -> Double {
        30 + Double(bytes) / 1_000_000
    }

    /// Seconds a reader that has sent its whole answer may take to exit before it is killed.
    package static let defaultExitGrace = 5.0

    /// A reader executable set by the host program (takes precedence over every other way).
    private static let injected = Locked<String?>(nil)

    /// Makes reads use `path` as the reading executable (nil: find it as `readerExecutable()` says).
    package static func useReader(at path: String?) {
        injected.withLock { $0 = path }
    }

    /// The executable that serves reads, in this order: the one set with `useReader(at:)`; the path
    /// in `$BLCONVERT_HDF5_READER`; a `blconvert-hdf5-reader` beside the running executable (the
    /// `blconvert` CLI, a test runner or a tool in the same build directory).
    package static func readerExecutable() throws -> String {
        if let path = injected.withLock({ $0 }) {
            guard access(path, X_OK) == 0 else {
                throw BLError(.io, "the HDF5 reader set by the program, '\(path)', is not an executable file")
            }
            return path
        }
        if let configured = getenv(readerEnvironment).map({ String(cString: $0) }), !configured.isEmpty {
            guard access(configured, X_OK) == 0 else {
                throw BLError(.io, "$\(readerEnvironment) names '\(configured)', which is not an executable file")
            }
            return configured
        }
        let own = ownExecutable()
        if let own, let slash = own.lastIndex(of: "/") {
            let sibling = String(own[..<slash]) + "/" + readerName
            if access(sibling, X_OK) == 0 { return sibling }
        }
        throw BLError(.unsupported, """
            reading HDF5 needs the \(readerName) executable, which runs libhdf5 in a separate process; \
            none was found beside \(own ?? "this program"): build it (swift build --product \(readerName)) \
            and put it there, or set $\(readerEnvironment) to its path
            """)
    }

    /// The absolute path of the running executable.
    private static func ownExecutable() -> String? {
        #if os(Linux)
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = buffer.withUnsafeMutableBufferPointer { b -> Int in
            guard let base = b.baseAddress else { return -1 }
            return readlink("/proc/self/exe", base, b.count - 1)
        }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #elseif canImport(Darwin)
        var size: UInt32 = 0
        _ = _NSGetExecutablePath(nil, &size)
        var buffer = [CChar](repeating: 0, count: Int(size) + 1)
        guard _NSGetExecutablePath(&buffer, &size) == 0 else { return nil }
        return String(cString: buffer)
        #else
        return nil
        #endif
    }

    /// Reads `path` (a file of `fileSize` bytes) in a reading process (`executable`, by default
    /// `readerExecutable()`), giving up after `timeout` seconds.
    package static func run(path: String, fileSize: Int, timeout: Double, executable: String? = nil,
                            exitGrace: Double = defaultExitGrace) throws -> HDF5Contents {
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
        let deadline = MonotonicClock.seconds() + timeout
        var child = Child(pid: pid)
        // Every way out of here reaps the child; one still running is killed first.
        defer { _ = child.finish(deadline: min(deadline, MonotonicClock.seconds() + exitGrace)) }

        let budget = HDF5Reader.byteLimit(fileSize: fileSize)
        var input = HDF5Wire.Reader(fd: fds[0], deadline: deadline, budget: budget)
        let answer: Result<HDF5Contents, BLError>
        do {
            answer = try input.answer()
        } catch let failure as HDF5Wire.Failure {
            switch failure {
            case .timedOut:
                child.kill()
                throw BLError(.format, "libhdf5 did not finish reading within \(Int(timeout)) s (the limit for a file of this size) and was stopped; it loops on some corrupt files")
            case .overBudget(let wanted):
                child.kill()
                throw BLError(.format, "the reading process sent more than the \(budget) bytes a file of \(fileSize) bytes can hold (\(wanted) more wanted); stopped")
            case .corrupt:
                child.kill()
                throw BLError(.format, "the reading process sent a malformed answer \(describe(child.finish(deadline: deadline)))")
            case .foreign:
                child.kill()
                throw BLError(.io, "\(executable) is not a compatible HDF5 reader (a reader of another blconvert version?)")
            case .ended:
                let status = child.finish(deadline: deadline)
                if let status, status & 0x7f == 0, (status >> 8) & 0xff == 64 || (status >> 8) & 0xff == 127 {
                    throw BLError(.io, "\(executable) did not start as an HDF5 reader \(describe(status)); is it a \(readerName) of this version?")
                }
                throw BLError(.format, "libhdf5 failed on this file \(describe(status)) without reporting an error (corrupt file?)")
            }
        }
        let status = child.finish(deadline: min(deadline, MonotonicClock.seconds() + exitGrace))
        let contents = try answer.get()
        guard status == 0 || status == nil else {
            throw BLError(.format, "the reading process ended \(describe(status)) after its answer")
        }
        return contents
    }

    /// Starts `executable` with stdin and stderr on /dev/null, stdout on `answerFD` and no other
    /// descriptor of this process.
    private static func spawn(_ executable: String, arguments: [String], answerFD: Int32) throws -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        defer { for p in argv { free(p) } }
        guard !argv.contains(where: { $0 == nil }) else { throw BLError(.io, "out of memory starting the HDF5 reader") }
        argv.append(nil)
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { blc_spawn_quiet(executable, $0.baseAddress, answerFD, &pid) }
        guard rc == 0 else {
            throw BLError(.io, "cannot start the HDF5 reader \(executable): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// A started reading process, reaped exactly once.
    struct Child {
        let pid: pid_t
        private var status: Int32?? = nil  // nil: not reaped yet; .some(nil): status unknown

        init(pid: pid_t) { self.pid = pid }

        /// Sends SIGKILL unless the child has been reaped (a reaped pid may belong to another process).
        func kill() {
            if status == nil { _ = sendSignal(pid, SIGKILL) }
        }

        /// The child's wait status: waits until `deadline`, then kills it and waits for the end.
        /// nil when it cannot be known (SIGCHLD ignored by the host process).
        mutating func finish(deadline: Double) -> Int32? {
            if let s = status { return s }
            var st: Int32 = 0
            var delay: UInt32 = 1_000
            while true {
                let r = waitpid(pid, &st, WNOHANG)
                if r == pid { status = .some(st); return st }
                if r < 0 && errno != EINTR { status = .some(nil); return nil }
                if MonotonicClock.seconds() >= deadline { break }
                usleep(delay)
                delay = min(delay * 2, 50_000)
            }
            _ = sendSignal(pid, SIGKILL)
            while waitpid(pid, &st, 0) < 0 {
                if errno != EINTR { status = .some(nil); return nil }
            }
            status = .some(st)
            return st
        }
    }

    private static func describe(_ status: Int32?) -> String {
        guard let status else { return "with an unknown status" }
        let signal = status & 0x7f
        if signal != 0 { return "with signal \(signal)\(signal == SIGSEGV ? " (segmentation fault)" : signal == SIGABRT ? " (abort)" : signal == SIGKILL ? " (killed)" : "")" }
        return "with exit status \((status >> 8) & 0xff)"
    }
}

/// `kill(2)`, under a name apart from `Child.kill()`.
@inline(__always) private func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 { kill(pid, signal) }
