import Foundation
import BLCore
import BLVerify
import BLMedia
import BLSafetensors

/// A batch of clips as the model takes them: float32 `[N, T*C, H, W]`, the T frames of each clip
/// stacked on the channels (frame `t`, colour `c` at channel `t * C + c`), already normalised.
///
/// Make one from values, from a file (`.safetensors` holding a tensor `input`, or `.npy`), or from
/// frames with ``Preprocessing/clip(fromSampledFrames:)``.
public struct Clip: Sendable {
    /// `[N, T*C, H, W]`.
    public var shape: [Int] { tensor.shape }
    /// Clips in the batch (N).
    public var count: Int { tensor.shape[0] }
    /// Channels: frames times channels per frame (T*C).
    public var channels: Int { tensor.shape[1] }
    public var height: Int { tensor.shape[2] }
    public var width: Int { tensor.shape[3] }
    /// Every value, row-major (a copy).
    public var values: [Float] { tensor.floats() }

    package let tensor: Tensor

    /// A clip from row-major values of the given `[N, T*C, H, W]` shape.
    public init(shape: [Int], values: [Float]) throws(BLConvertError) {
        let t = try bridged { try Tensor.fromFloats(values, shape: shape) }
        try self.init(tensor: t)
    }

    /// Reads a clip file: a `.safetensors` file's tensor `input` (or its only tensor), or a `.npy`
    /// array (little-endian float32, C order).
    public init(contentsOf url: URL) throws(BLConvertError) {
        let path = url.path
        let t = try bridged { () throws -> Tensor in
            let file = try MappedFile(path: path)
            let b = file.bytes
            if NPYReader.looksLikeNPY(b) {
                return try NPYReader.load(path: path)
            }
            guard SafetensorsFile.looksLikeSafetensors(b) else {
                throw BLError(.unsupported, "not a frame folder, a .npy file or a safetensors file", file: path)
            }
            let st = try SafetensorsFile.load(file: file)
            if let t = st.tensor("input") { return t }
            if st.tensors.count == 1 { return st.tensors[0].tensor }
            throw BLError(.mismatch, "no tensor named 'input' among \(st.tensors.count) tensors", file: path)
        }
        do {
            try self.init(tensor: t)
        } catch {
            throw BLConvertError(error.kind, error.message, file: path, location: error.location, detail: error.detail)
        }
    }

    /// Whether `path` starts as a clip tensor file does (`.npy` magic, or a safetensors header);
    /// anything else that is a file is taken for a video.
    package static func isTensorFile(_ path: String) -> Bool {
        guard let file = try? MappedFile(path: path) else { return false }
        let b = file.bytes
        return NPYReader.looksLikeNPY(b) || SafetensorsFile.looksLikeSafetensors(b)
    }

    package init(tensor: Tensor) throws(BLConvertError) {
        guard tensor.rank == 4, tensor.shape.allSatisfy({ $0 > 0 }) else {
            throw BLConvertError(.invalidArgument, "a clip is [N, T*C, H, W] with every size positive, found shape \(tensor.shape)")
        }
        guard tensor.dtype.isFloatingPoint else {
            throw BLConvertError(.invalidArgument, "a clip holds floating-point values, found \(tensor.dtype.torchName)")
        }
        self.tensor = tensor
    }
}

/// The classifier's output for a batch: `[N, classes]` float32, before softmax.
public struct Logits: Sendable {
    /// Samples (N).
    public let count: Int
    public let classes: Int
    /// Every value, row-major: sample `s`, class `c` at `s * classes + c`.
    public let values: [Float]

    package init(tensor: Tensor) throws(BLConvertError) {
        guard tensor.rank == 2 else {
            throw BLConvertError(.internalError, "the model's output has shape \(tensor.shape), expected [N, classes]")
        }
        count = tensor.shape[0]
        classes = tensor.shape[1]
        values = tensor.floats()
    }

    /// The logits of one sample.
    public subscript(sample: Int) -> ArraySlice<Float> {
        values[(sample * classes)..<((sample + 1) * classes)]
    }

    /// Softmax probabilities of one sample, computed in float64.
    public func probabilities(sample: Int) -> [Double] {
        Ranking.softmax(self[sample])
    }

    /// The `k` best classes of one sample, best first (ties: the lower class index first).
    public func top(_ k: Int, sample: Int) -> [Int] {
        Ranking.topK(self[sample], max(0, min(k, classes)))
    }
}
