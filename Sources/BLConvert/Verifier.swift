import BLCore
import BLVerify
import Foundation

/// How close a model's output must be to the reference.
///
/// A compared tensor passes when `max|output - reference| <= absolute + relative * max|reference|`.
/// PyTorch's own float32 reaches 1e-7 to 3e-6 relative against its float64 run on the fixture clips;
/// half-precision packages need about 1e-2.
public struct Tolerance: Sendable, Equatable {
    public var relative: Double
    public var absolute: Double
    /// Also require every sample's top-5 classes in the reference's order.
    public var requireTop5: Bool
    /// Compare the `act.<module>` intermediate outputs a clip file holds, where the model has them.
    public var compareIntermediates: Bool

    public init(relative: Double = 1e-5, absolute: Double = 0, requireTop5: Bool = false, compareIntermediates: Bool = true) {
        self.relative = relative
        self.absolute = absolute
        self.requireTop5 = requireTop5
        self.compareIntermediates = compareIntermediates
    }

    package var options: VerifyOptions {
        VerifyOptions(rtol: relative, atol: absolute, requireTop5: requireTop5, compareActivations: compareIntermediates)
    }
}

/// How far one tensor is from its reference.
public struct Agreement: Sendable, Equatable {
    /// `max|output - reference|`.
    public let maxAbsoluteError: Double
    /// `max|output - reference| / max|reference|`.
    public let maxRelativeError: Double
    /// Cosine similarity of the two as vectors.
    public let cosine: Double

    init(_ a: BLVerify.Agreement) {
        maxAbsoluteError = a.maxAbsError
        maxRelativeError = a.maxRelError
        cosine = a.cosine
    }
}

/// The verdict on one reference clip file.
public struct ClipVerification: Sendable {
    /// One sample (row) of the clip.
    public struct Sample: Sendable, Equatable {
        public let index: Int
        public let agreement: Agreement
        /// Whether the best class, and the five best in order, equal the reference's.
        public let top1Equal: Bool
        public let top5Equal: Bool
        public let referenceTop5: [Int]
        public let outputTop5: [Int]
    }

    /// An intermediate output (`act.<module>` of the clip file).
    public struct Intermediate: Sendable, Equatable {
        /// The reference module, e.g. `baseline_model.layer1`.
        public let module: String
        /// nil when the model has no node computing it (an optimized package folded it away).
        public let agreement: Agreement?
        public let passed: Bool
        /// Why it was not compared, or how it differs.
        public let note: String?
    }

    public let file: URL
    /// `[N, T*C, H, W]`.
    public let inputShape: [Int]
    /// The reference tensor compared with: `logits_f64`, else `logits`.
    public let referenceName: String
    /// Over every logit of the clip.
    public let agreement: Agreement
    public let samples: [Sample]
    public let intermediates: [Intermediate]
    /// The first reference module, in execution order, whose output diverges.
    public let firstDivergence: String?
    public let passed: Bool
    /// Seconds the model took.
    public let seconds: Double

    package let result: ClipResult

    init(_ r: ClipResult) {
        result = r
        file = URL(fileURLWithPath: r.file)
        inputShape = r.inputShape
        referenceName = r.referenceName
        agreement = Agreement(r.overall)
        samples = r.samples.map {
            Sample(index: $0.index, agreement: Agreement($0.agreement), top1Equal: $0.top1, top5Equal: $0.top5,
                   referenceTop5: $0.referenceTop5, outputTop5: $0.outputTop5)
        }
        intermediates = r.activations.map {
            Intermediate(module: $0.module, agreement: $0.agreement.map(Agreement.init), passed: $0.passed, note: $0.note)
        }
        firstDivergence = r.firstDivergence?.module
        passed = r.passed
        seconds = r.seconds
    }
}

/// The verdict on a set of reference clips.
public struct VerificationReport: Sendable {
    /// A clip that could not be checked (unreadable, or an input the model does not take).
    public struct Failure: Sendable {
        public let file: URL
        public let error: BLConvertError
    }

    /// The clips checked, in the order given.
    public let clips: [ClipVerification]
    /// The clips that could not be checked.
    public let failures: [Failure]
    public let tolerance: Tolerance

    /// Every clip was checked and passed.
    public var passed: Bool { failures.isEmpty && clips.allSatisfy(\.passed) }
    /// The largest relative logits error over the clips checked.
    public var worstRelativeError: Double { clips.map(\.agreement.maxRelativeError).max() ?? 0 }

    package let errors: [ClipError]
}

/// Proves parity: runs reference clips (written by the reference PyTorch code: `input`, `logits_f64`
/// or `logits`, optionally `act.<module>`) through a model and compares.
public enum Verifier {
    /// What ``verify(model:clips:tolerance:progress:)`` reports as it goes.
    public enum Event: Sendable {
        case started(index: Int, of: Int, file: URL)
        case finished(index: Int, of: Int, file: URL, passed: Bool?, seconds: Double)
    }

    /// Checks every clip; a clip that cannot be checked is reported in ``VerificationReport/failures``
    /// and the others are still run. Throws only for a tolerance that is not a number >= 0.
    public static func verify(model: BLVNetModel, clips: [URL], tolerance: Tolerance = .init(),
                              progress: ((Event) -> Void)? = nil) throws(BLConvertError) -> VerificationReport {
        guard tolerance.relative >= 0, tolerance.absolute >= 0 else {
            throw BLConvertError(.invalidArgument, "tolerances must be >= 0, got relative \(tolerance.relative), absolute \(tolerance.absolute)")
        }
        var results: [ClipResult] = [], errors: [ClipError] = []
        let options = tolerance.options
        for (i, url) in clips.enumerated() {
            progress?(.started(index: i, of: clips.count, file: url))
            let start = MonotonicClock.seconds()
            do {
                let clip = try ClipReference.load(path: url.path)
                let r = try ParityCheck.verify(engine: model.engine, graph: model.graph, clip: clip, options: options,
                                               clock: MonotonicClock.seconds)
                results.append(r)
                progress?(.finished(index: i, of: clips.count, file: url, passed: r.passed, seconds: r.seconds))
            } catch {
                // One bad clip does not hide the verdict on the others.
                var e = (error as? BLError) ?? BLError(.format, "\(error)")
                e = e.inFile(url.path)
                errors.append(ClipError(file: url.path, error: e))
                progress?(.finished(index: i, of: clips.count, file: url, passed: nil, seconds: MonotonicClock.seconds() - start))
            }
        }
        return VerificationReport(clips: results.map(ClipVerification.init),
                                  failures: errors.map { .init(file: URL(fileURLWithPath: $0.file), error: BLConvertError($0.error)) },
                                  tolerance: tolerance, errors: errors)
    }
}
