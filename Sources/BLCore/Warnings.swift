/// Warnings: things that do not stop a command but that its user should know (settings that
/// contradict each other or the file). Library code emits them; whoever runs it collects them
/// (`collect`), and the CLI prints them on stderr. Outside `collect` they are dropped.
package enum Warnings {
    package final class Sink: @unchecked Sendable {
        let messages = Locked<[String]>([])
    }

    @TaskLocal static var sink: Sink?

    package static func emit(_ message: String) {
        sink?.messages.withLock { $0.append(message) }
    }

    /// Runs `body`, returning what it returns and the warnings emitted meanwhile (in order, each once).
    package static func collect<R>(_ body: () throws -> R) rethrows -> (R, [String]) {
        let s = Sink()
        let r = try $sink.withValue(s) { try body() }
        var seen = Set<String>()
        return (r, s.messages.withLock { $0 }.filter { seen.insert($0).inserted })
    }
}
