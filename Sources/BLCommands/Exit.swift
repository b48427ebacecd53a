import ArgumentParser
import BLConvert
import BLCore

/// Exit codes: 0 success, 1 a verification failed, 2 bad input.
enum Exit {
    static let failed = ExitCode(1)
    static let badInput = ExitCode(2)
}

/// Runs a command body, turning blconvert errors into a clear message and exit status 2.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as BLError {
        Console.err("error: \(e)")
        throw Exit.badInput
    } catch let e as BLConvertError {
        Console.err("error: \(e)")
        throw Exit.badInput
    }
}

extension Error {
    /// The same error naming `path` as its file when it named none (other errors as they are).
    func located(in path: String) -> Error {
        switch self {
        case let e as BLError: return e.inFile(path)
        case let e as BLConvertError: return e.inFile(path)
        default: return self
        }
    }
}
