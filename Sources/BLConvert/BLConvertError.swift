import BLCore

/// The error every throwing API of BLConvert throws.
///
/// It says what went wrong and, where known, in which file and where in it (`data.pkl at byte
/// 57`, `weight 'layer1.conv1.weight'`). Problems a program may act on carry their data in
/// ``detail``: the whole list of missing, unexpected and mis-shaped tensors of a strict load, the
/// refused pickle global, the index of a non-finite input element.
///
/// ```swift
/// do {
///     let model = try BLVNetModel(checkpoint: url, frames: 16)
/// } catch let error {
///     if case .weights(let mismatch)? = error.detail {
///         print("missing:", mismatch.missing.map(\.name))
///     }
/// }
/// ```
public struct BLConvertError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The class of problem.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// A file could not be opened, mapped, read or written.
        case io
        /// The bytes do not follow their format (truncated, corrupt, inconsistent).
        case format
        /// The file asks for something a safe reader refuses, such as a pickle global outside the
        /// allowlist. Nothing of it was executed.
        case refused
        /// Valid for its format but outside what blconvert handles.
        case unsupported
        /// Well-formed but not what was expected (missing or mis-shaped tensors, a clip of the wrong
        /// size for the model).
        case mismatch
        /// An argument given by the caller is wrong.
        case invalidArgument
        /// A numeric problem, such as a NaN or infinite input.
        case numeric
        /// A broken invariant of blconvert itself; please report it.
        case internalError
    }

    /// A tensor that a model needs, by name and shape.
    public struct TensorSpec: Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public let shape: [Int]
        public init(name: String, shape: [Int]) {
            self.name = name
            self.shape = shape
        }
        public var description: String { "\(name) \(shape)" }
    }

    /// A tensor present under the right name with the wrong shape.
    public struct MisshapedTensor: Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public let expected: [Int]
        public let found: [Int]
        public init(name: String, expected: [Int], found: [Int]) {
            self.name = name
            self.expected = expected
            self.found = found
        }
        public var description: String { "\(name): expected \(expected), found \(found)" }
    }

    /// Every way a checkpoint's tensors failed to match the model they map onto, as a strict
    /// `load_state_dict(strict=True)` would list them. Names are spelled as in the file.
    public struct WeightMismatch: Sendable, Equatable {
        /// Tensors the model needs that the file lacks.
        public let missing: [TensorSpec]
        /// Tensors of the file the model does not use.
        public let unexpected: [String]
        /// Tensors with the expected name and another shape.
        public let misshaped: [MisshapedTensor]
        /// Tensors whose dtype is not a floating-point one.
        public let notFloatingPoint: [String]
        /// Names that appear twice once prefixes such as `module.` are removed.
        public let duplicates: [String]
    }

    /// A problem as data.
    public enum Detail: Sendable, Equatable {
        /// Strict loading failed: the whole list of differences.
        case weights(WeightMismatch)
        /// A pickle asked for `module.name`, which is not allowed; nothing was run.
        case refusedGlobal(module: String, name: String)
        /// An input element is NaN or infinite.
        case nonFiniteInput(index: [Int], value: Float)
        /// A tensor of the wrong shape.
        case shape(name: String, expected: [Int], found: [Int])
    }

    public let kind: Kind
    /// What went wrong, in a sentence.
    public let message: String
    /// The file concerned, when there is one.
    public let file: String?
    /// Where in the file (`at byte 4096`, `archive/data.pkl at byte 57`, `weight 'fc.weight'`).
    public let location: String?
    /// The problem as data, where a program may act on it.
    public let detail: Detail?

    /// An error of the given kind.
    public init(_ kind: Kind, _ message: String, file: String? = nil, location: String? = nil, detail: Detail? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.location = location
        self.detail = detail
    }

    /// `file: message (location)`.
    public var description: String {
        var s = ""
        if let file { s += "\(file): " }
        s += message
        if let location { s += " (\(location))" }
        return s
    }
}

extension BLConvertError {
    package init(_ e: BLError) {
        self.init(Kind(e.kind), e.message, file: e.file, location: e.location, detail: e.detail.map(Detail.init))
    }

    /// The same error with a file name filled in if it had none.
    package func inFile(_ path: String) -> BLConvertError {
        file == nil ? BLConvertError(kind, message, file: path, location: location, detail: detail) : self
    }

    /// Any error as a `BLConvertError` (errors of other types become `.internalError`).
    package init(wrapping error: any Error) {
        switch error {
        case let e as BLConvertError: self = e
        case let e as BLError: self.init(e)
        default: self.init(.internalError, "\(error)")
        }
    }
}

extension BLConvertError.Kind {
    init(_ k: BLError.Kind) {
        switch k {
        case .io: self = .io
        case .format: self = .format
        case .refused: self = .refused
        case .unsupported: self = .unsupported
        case .mismatch: self = .mismatch
        case .invalidArgument: self = .invalidArgument
        case .numeric: self = .numeric
        case .internal: self = .internalError
        }
    }
}

extension BLConvertError.Detail {
    init(_ d: BLError.Detail) {
        switch d {
        case .weights(let w):
            self = .weights(BLConvertError.WeightMismatch(
                missing: w.missing.map { .init(name: $0.name, shape: $0.shape) },
                unexpected: w.unexpected,
                misshaped: w.misshaped.map { .init(name: $0.name, expected: $0.expected, found: $0.found) },
                notFloatingPoint: w.notFloat, duplicates: w.duplicates))
        case let .refusedGlobal(module, name): self = .refusedGlobal(module: module, name: name)
        case let .nonFiniteInput(index, value): self = .nonFiniteInput(index: index, value: value)
        case let .shape(name, expected, found): self = .shape(name: name, expected: expected, found: found)
        }
    }
}

/// Runs `body`, turning whatever it throws into a `BLConvertError`: the one crossing from the
/// package's internals to the public API.
@inline(__always)
package func bridged<R>(_ body: () throws -> R) throws(BLConvertError) -> R {
    do {
        return try body()
    } catch {
        throw BLConvertError(wrapping: error)
    }
}
