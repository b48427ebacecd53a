/// The one error type every reader, mapper and engine throws.
///
/// It always says what went wrong and, where known, in which file and where in it
/// (`data.pkl at byte 57`, `tensor 'layer1.conv1.weight'`, `offset 4096`).
package struct BLError: Error, CustomStringConvertible, Sendable, Equatable {
    package enum Kind: String, Sendable, Codable {
        /// The file could not be opened, mapped or written.
        case io
        /// The bytes do not follow the format (truncated, corrupt, inconsistent).
        case format
        /// The file asks for something a safe reader refuses (a global outside the allowlist).
        case refused
        /// Valid for its format but outside what blconvert handles.
        case unsupported
        /// Well-formed but does not match what is expected (missing or mis-shaped tensors, ...).
        case mismatch
        /// A user-supplied argument is wrong.
        case invalidArgument
        /// A numeric problem (NaN or Inf input, overflow).
        case numeric
    }

    package var kind: Kind
    package var message: String
    package var file: String?
    package var location: String?

    package init(_ kind: Kind, _ message: String, file: String? = nil, location: String? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.location = location
    }

    package var description: String {
        var s = ""
        if let file { s += "\(file): " }
        s += message
        if let location { s += " (\(location))" }
        return s
    }

    /// The same error with a file name filled in if it had none.
    package func inFile(_ path: String) -> BLError {
        var e = self
        if e.file == nil { e.file = path }
        return e
    }

    /// The same error with an outer location prefixed, e.g. an archive member name.
    package func at(_ outer: String) -> BLError {
        var e = self
        e.location = e.location.map { "\(outer): \($0)" } ?? outer
        return e
    }
}

extension BLError {
    package static func format(_ message: String, file: String? = nil, offset: Int? = nil) -> BLError {
        BLError(.format, message, file: file, location: offset.map { "at byte \($0)" })
    }
}
