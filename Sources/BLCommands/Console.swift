import BLCore

/// Collects what a command writes, instead of the process's stdout and stderr (set with
/// `Console.$capture.withValue(...)`, for running commands inside another program).
package final class OutputCapture: @unchecked Sendable {
    private let text = Locked((out: "", err: ""))

    package init() {}

    /// Everything written to standard output so far.
    package var stdout: String { text.withLock { $0.out } }
    /// Everything written to standard error so far.
    package var stderr: String { text.withLock { $0.err } }

    func append(_ s: String, toError: Bool) {
        text.withLock { if toError { $0.err += s } else { $0.out += s } }
    }
}

/// Output helpers shared by the subcommands: results on stdout, messages on stderr, and a
/// progress line on stderr only when it is a terminal.
package enum Console {
    /// When set, output goes here instead of file descriptors 1 and 2 (and no progress is shown).
    @TaskLocal package static var capture: OutputCapture?

    /// Whether a progress line is on the terminal and must be cleared before other stderr text.
    nonisolated(unsafe) private static var progressShown = false

    static func out(_ s: String) { emit(s, fd: 1) }

    static func err(_ s: String) {
        clearProgress()
        emit(s, fd: 2)
    }

    private static func emit(_ s: String, fd: Int32) {
        var s = s
        if !s.hasSuffix("\n") { s += "\n" }
        if let c = capture {
            c.append(s, toError: fd == 2)
        } else {
            writeAll(fd, s)
        }
    }

    /// Writes all the bytes to a file descriptor, retrying short writes.
    private static func writeAll(_ fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)
        bytes.withUnsafeMutableBytes { buf in
            guard let base = buf.baseAddress else { return }
            var off = 0
            while off < buf.count {
                let n = write(fd, base + off, buf.count - off)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    static var stderrIsTerminal: Bool { isatty(2) != 0 }

    /// Replaces the progress line on stderr (in place), only when stderr is a terminal; an empty
    /// text clears it.
    static func progress(_ s: String) {
        guard capture == nil, stderrIsTerminal else { return }
        if s.isEmpty {
            clearProgress()
            return
        }
        writeAll(2, "\r\u{1b}[K" + s)
        progressShown = true
    }

    private static func clearProgress() {
        guard progressShown, capture == nil else { return }
        writeAll(2, "\r\u{1b}[K")
        progressShown = false
    }
}
