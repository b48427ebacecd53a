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
        /// A broken invariant of blconvert itself (a bug, never the input's fault).
        case `internal`
    }

    /// What went wrong as data, for callers that act on it rather than print it.
    package enum Detail: Sendable, Equatable {
        /// Weights that do not match the model: strict loading's whole list.
        case weights(WeightMismatch)
        /// A pickle global outside the allowlist (`module.name`), refused before anything ran.
        case refusedGlobal(module: String, name: String)
        /// An input element that is NaN or infinite, by index.
        case nonFiniteInput(index: [Int], value: Float)
        /// A tensor whose shape is not the expected one.
        case shape(name: String, expected: [Int], found: [Int])
    }

    /// Every way a set of tensors failed to match what a model declares.
    package struct WeightMismatch: Sendable, Equatable {
        package struct Misshaped: Sendable, Equatable {
            package var name: String
            package var expected: [Int]
            package var found: [Int]
            package init(name: String, expected: [Int], found: [Int]) {
                self.name = name
                self.expected = expected
                self.found = found
            }
        }
        /// Names (as the checkpoint spells them) the model needs but the file lacks, with their shapes.
        package var missing: [(name: String, shape: [Int])]
        /// Names the file holds that the model does not use.
        package var unexpected: [String]
        package var misshaped: [Misshaped]
        /// Tensors of a non-floating dtype, and names present twice after prefixes are removed.
        package var notFloat: [String]
        package var duplicates: [String]

        package init(missing: [(name: String, shape: [Int])] = [], unexpected: [String] = [], misshaped: [Misshaped] = [],
                     notFloat: [String] = [], duplicates: [String] = []) {
            self.missing = missing
            self.unexpected = unexpected
            self.misshaped = misshaped
            self.notFloat = notFloat
            self.duplicates = duplicates
        }

        package var isEmpty: Bool {
            missing.isEmpty && unexpected.isEmpty && misshaped.isEmpty && notFloat.isEmpty && duplicates.isEmpty
        }

        package static func == (a: WeightMismatch, b: WeightMismatch) -> Bool {
            a.missing.map(\.name) == b.missing.map(\.name) && a.missing.map(\.shape) == b.missing.map(\.shape)
                && a.unexpected == b.unexpected && a.misshaped == b.misshaped && a.notFloat == b.notFloat
                && a.duplicates == b.duplicates
        }
    }

    package var kind: Kind
    package var message: String
    package var file: String?
    package var location: String?
    /// The problem as data, where a caller may act on it.
    package var detail: Detail?

    package init(_ kind: Kind, _ message: String, file: String? = nil, location: String? = nil, detail: Detail? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.location = location
        self.detail = detail
    }

    /// A broken invariant of blconvert itself: reported, never trapped on.
    package static func invariant(_ message: String, function: String = #function) -> BLError {
        BLError(.internal, "internal error in \(function): \(message) (please report this)")
    }

    package var description: String {
        // A message may lead with one line and give details on the next ones: the location
        // belongs to the first line.
        var s = ""
        if let file { s += "\(file): " }
        let lines = message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        s += lines.first.map(String.init) ?? ""
        if let location { s += " (\(location))" }
        if lines.count > 1 { s += "\n" + lines[1] }
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
