import BLCore
import Foundation

extension ModelPackage {
    /// Where the weights came from.
    package struct Source: Sendable, Equatable {
        /// The checkpoint's file name (no directory).
        package var fileName: String
        /// Lower-case hex SHA-256 of the checkpoint file.
        package var sha256: String

        package init(fileName: String, sha256: String) {
            self.fileName = fileName
            self.sha256 = sha256
        }

        /// Name and digest of a file on disk.
        package static func of(file path: String) throws -> Source {
            Source(fileName: String(path.split(separator: "/").last ?? Substring(path)), sha256: try SHA256.hex(file: path))
        }
    }

    /// `Source.of(file:)` computed on a thread of its own, started at `init`, so that hashing the
    /// checkpoint overlaps the passes and the writing; `wait()` joins it.
    package final class PendingSource: Sendable {
        package let path: String
        private let outcome = Locked<(result: Result<Source, BLError>, seconds: Double)?>(nil)

        package init(file path: String) {
            self.path = path
            let thread = Thread { [self] in
                let (result, seconds) = MonotonicClock.measure { () -> Result<Source, BLError> in
                    do { return .success(try Source.of(file: path)) }
                    catch let e as BLError { return .failure(e) }
                    catch { return .failure(BLError(.io, "\(error)", file: path)) }
                }
                outcome.update { $0 = (result, seconds) }
            }
            thread.name = "sha256"
            thread.start()
        }

        /// The source once hashed (waits for the thread; the same answer on every call).
        package func wait() throws -> Source {
            try outcome.wait(until: { $0 != nil }) { o in
                guard let o else { throw BLError.invariant("hashing ended without a result") }
                return try o.result.get()
            }
        }

        /// Seconds the hashing took on its thread (0 until it has finished).
        package var seconds: Double { outcome.withLock { $0?.seconds ?? 0 } }
    }
}
