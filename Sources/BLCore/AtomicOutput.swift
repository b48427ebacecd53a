import CCleanup

/// The one way the package writes an output file: into a new temporary file beside it, renamed
/// over the destination only once complete, so a reader never sees half a file and a failure
/// leaves nothing behind.
///
/// The temporary file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` under an unpredictable name
/// (`.NAME.tmp-PID-RANDOM` in the destination's directory, so the rename stays on one file system):
/// a file or symbolic link planted there beforehand makes the creation fail instead of being
/// written through.
///
/// While it exists the temporary file is registered for removal on SIGINT, SIGTERM and SIGHUP
/// (`CCleanup`: removed, then the signal takes its default action). A process killed outright
/// (SIGKILL, a crash) leaves it behind: the next output to the same destination removes the
/// temporaries of that destination whose process is gone (`TemporaryOutputs.removeStale`).
package final class AtomicFile {
    package let destination: String
    package let temporaryPath: String
    private var fd: Int32
    private var finished = false

    /// Creates the temporary file for `destination`.
    package init(destination: String) throws {
        self.destination = destination
        TemporaryOutputs.removeStale(for: destination)
        var attempt = 0
        while true {
            let temp = AtomicFile.temporaryName(for: destination)
            TemporaryOutputs.register(temp)
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            if fd >= 0 {
                self.fd = fd
                temporaryPath = temp
                return
            }
            let e = errno
            TemporaryOutputs.unregister(temp)
            attempt += 1
            if e != EEXIST || attempt >= 8 {
                throw TemporaryOutputs.creationError(destination, errno: e, what: "a temporary file")
            }
        }
    }

    deinit { if !finished { discard() } }

    /// `dir/.name.tmp-<pid>-<64 random bits>` beside `path`.
    package static func temporaryName(for path: String, kind: String = "tmp") -> String {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[...$0]) } ?? ""
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(dir).\(base).\(kind)-\(getpid())-\(random)"
    }

    /// Appends all of `bytes`.
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw BLError.invariant("write after commit or discard") }
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = posixWrite(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw BLError(.io, "write failed: \(String(cString: strerror(errno)))", file: destination)
            }
            if n == 0 { throw BLError(.io, "write made no progress", file: destination) }
            p += n
            left -= n
        }
    }

    package func write(_ text: String) throws {
        var bytes = Array(text.utf8)
        try bytes.withUnsafeMutableBytes { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Flushes the file to disk and renames it over the destination.
    package func commit() throws {
        guard !finished else { throw BLError.invariant("commit after commit or discard") }
        do {
            if fsync(fd) != 0 {
                throw BLError(.io, "cannot flush: \(String(cString: strerror(errno)))", file: destination)
            }
            let rc = close(fd)
            fd = -1
            if rc != 0 { throw BLError(.io, "cannot close: \(String(cString: strerror(errno)))", file: destination) }
            if rename(temporaryPath, destination) != 0 {
                throw BLError(.io, "cannot rename \(temporaryPath) to the destination: \(String(cString: strerror(errno)))",
                              file: destination)
            }
            TemporaryOutputs.unregister(temporaryPath)
            finished = true
        } catch {
            discard()
            throw error
        }
    }

    /// Closes and removes the temporary file; the destination is untouched.
    package func discard() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
        TemporaryOutputs.unregister(temporaryPath)
        finished = true
    }

    /// Writes `text` to `path` atomically.
    package static func write(_ text: String, to path: String) throws {
        try writing(to: path) { try $0.write(text) }
    }

    /// Runs `body` with a new atomic file for `path` and commits it when `body` returns; on an error
    /// the temporary file is removed.
    package static func writing<R>(to path: String, _ body: (AtomicFile) throws -> R) throws -> R {
        let file = try AtomicFile(destination: path)
        do {
            let r = try body(file)
            try file.commit()
            return r
        } catch {
            file.discard()
            throw error
        }
    }
}

extension AtomicFile {
    /// Writes a new file that must not exist yet (`O_CREAT | O_EXCL | O_NOFOLLOW`), with no rename:
    /// for the files of a directory that `AtomicDirectory` installs as a whole.
    package static func createNew(_ path: String, bytes: UnsafeRawBufferPointer) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw BLError(.io, "cannot create: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = posixWrite(fd, p, min(left, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BLError(.io, "write failed: \(String(cString: strerror(errno)))", file: path) }
            p += n
            left -= n
        }
    }
}

/// `write(2)`, under a name apart from `AtomicFile.write`.
@inline(__always) private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// The same for an output directory (a model package): filled in a new hidden directory beside
/// the destination, then renamed into place, replacing an existing one only when asked.
package enum AtomicDirectory {
    /// Creates a new empty directory beside `path` under an unpredictable name and returns its path.
    package static func temporarySibling(of path: String) throws -> String {
        TemporaryOutputs.removeStale(for: path)
        for _ in 0..<8 {
            let temp = AtomicFile.temporaryName(for: path)
            TemporaryOutputs.register(temp)
            if mkdir(temp, 0o777) == 0 { return temp }
            let e = errno
            TemporaryOutputs.unregister(temp)
            if e != EEXIST { throw TemporaryOutputs.creationError(path, errno: e, what: "a directory") }
        }
        throw BLError(.io, "cannot create a directory beside the output: names kept colliding", file: path)
    }

    /// Moves the finished directory `temp` to `path`. An existing `path` is first renamed aside,
    /// and put back if the move fails; it is removed once the new directory is in place.
    package static func install(_ temp: String, at path: String, replacingExisting: Bool) throws {
        func move(_ from: String, _ to: String) throws {
            if rename(from, to) != 0 {
                throw BLError(.io, "cannot rename \(from) to \(to): \(String(cString: strerror(errno)))", file: to)
            }
        }
        guard replacingExisting, FileKind.of(path) != .missing else {
            try move(temp, path)
            TemporaryOutputs.unregister(temp)
            return
        }
        let old = AtomicFile.temporaryName(for: path, kind: "old")
        try move(path, old)
        do {
            try move(temp, path)
        } catch {
            try? move(old, path)
            throw error
        }
        TemporaryOutputs.unregister(temp)
        removeTree(old)
    }

    /// Removes a directory tree written by this package (regular files and directories; symbolic
    /// links are removed, never followed). Errors are ignored: it is cleanup.
    package static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
        TemporaryOutputs.unregister(path)
    }
}

/// The temporary outputs of `AtomicFile` and `AtomicDirectory`: registration for removal on a
/// signal, and removal of those that a killed process left behind.
package enum TemporaryOutputs {
    package static func register(_ path: String) { _ = blc_cleanup_register(path) }
    package static func unregister(_ path: String) { blc_cleanup_unregister(path) }

    /// Removes the registered temporary outputs whose paths start with `prefix` now: what the
    /// signal handler does for all of them, without touching what other threads are writing.
    package static func removeRegistered(under prefix: String) { blc_cleanup_run_under(prefix) }

    /// Removes `.NAME.tmp-PID-HEX` and `.NAME.old-PID-HEX` beside `destination` whose process PID
    /// no longer exists (killed before it could clean up). Temporaries of live processes, of other
    /// destinations and anything not named exactly so are left alone. Errors are ignored: cleanup.
    package static func removeStale(for destination: String) {
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[...$0]) } ?? ""
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        guard !base.isEmpty, let d = opendir(dir.isEmpty ? "." : dir) else { return }
        var stale: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = ownerPID(name, base: base), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                stale.append(dir + name)
            }
        }
        closedir(d)
        for path in stale { AtomicDirectory.removeTree(path) }
    }

    /// The process id in a temporary name of `base` (`.base.tmp-PID-HEX`, `.base.old-PID-HEX`).
    static func ownerPID(_ name: String, base: String) -> pid_t? {
        for kind in ["tmp", "old"] {
            let prefix = ".\(base).\(kind)-"
            guard name.hasPrefix(prefix) else { continue }
            let rest = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard rest.count == 2, let pid = pid_t(rest[0]), pid > 0, !rest[1].isEmpty,
                  rest[1].allSatisfy({ $0.isHexDigit }) else { return nil }
            return pid
        }
        return nil
    }

    /// Why a temporary output beside `destination` could not be created; a missing folder is named.
    static func creationError(_ destination: String, errno e: Int32, what: String) -> BLError {
        let slash = destination.lastIndex(of: "/")
        let dir = slash.map { String(destination[..<$0]) } ?? "."
        if e == ENOENT {
            return BLError(.io, "cannot write here: the folder \(dir.isEmpty ? "/" : dir) does not exist", file: destination)
        }
        if e == ENOTDIR {
            return BLError(.io, "cannot write here: \(dir) is not a folder", file: destination)
        }
        return BLError(.io, "cannot create \(what) beside the output: \(String(cString: strerror(e)))", file: destination)
    }
}
