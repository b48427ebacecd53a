import BLCore
import BLMedia
import BLVideo
import Foundation

/// The reference evaluation's preprocessing of RGB frames (`test.py` with one clip and one crop):
/// uniform fixed-offset sampling of ``frames`` frames, the shorter side resized to ``scale``
/// with Pillow's antialiased bilinear filter, a centre crop of ``crop``, values divided by 255,
/// then normalised by ImageNet's mean and standard deviation. Checked to the bit against the
/// reference pipeline.
public struct Preprocessing: Sendable, Equatable {
    /// Frames per clip, T.
    public var frames: Int
    /// The shorter side after resizing: 224 as the released models are evaluated
    /// (`--disable_scaleup`), 256 otherwise.
    public var scale: Int
    /// The side of the centre crop.
    public var crop: Int
    /// Per-channel mean and standard deviation (RGB), applied after dividing by 255.
    public var mean: [Double]
    public var standardDeviation: [Double]

    public init(frames: Int, scale: Int = 224, crop: Int = 224,
                mean: [Double] = [0.485, 0.456, 0.406], standardDeviation: [Double] = [0.229, 0.224, 0.225]) {
        self.frames = frames
        self.scale = scale
        self.crop = crop
        self.mean = mean
        self.standardDeviation = standardDeviation
    }

    package var internalValue: BLMedia.Preprocessing {
        BLMedia.Preprocessing(frames: frames, scale: scale, crop: crop, mean: mean, std: standardDeviation)
    }

    /// The 1-based frame numbers the reference samples from a video of `frameCount` frames:
    /// `int(tick / 2 + tick * x) + 1` with `tick = frameCount / T` when the video has more than T
    /// frames, else NumPy's seeded `np.random.choice` draws, sorted (frames repeat).
    public func sampleIndices(frameCount: Int) -> [Int] {
        internalValue.sampleIndices(frameCount: frameCount)
    }

    /// The `[1, T*3, crop, crop]` clip of T frames that were already sampled (in order).
    public func clip(fromSampledFrames frames: [RGBImage]) throws(BLConvertError) -> Clip {
        let p = internalValue
        let t = try bridged { () throws -> Tensor in
            try p.validate()
            return try p.tensor(fromCropped: frames.map { p.scaleAndCrop($0.image) })
        }
        return try Clip(tensor: t)
    }

    /// The clip of a whole video's frames, in order: samples T of them, then preprocesses those.
    /// Returns the clip and the 1-based numbers of the frames used.
    public func clip(fromVideoFrames frames: [RGBImage]) throws(BLConvertError) -> (clip: Clip, frameNumbers: [Int]) {
        guard !frames.isEmpty else { throw BLConvertError(.invalidArgument, "a video needs at least one frame") }
        let numbers = sampleIndices(frameCount: frames.count)
        return (try clip(fromSampledFrames: numbers.map { frames[$0 - 1] }), numbers)
    }

    /// The clip of a folder of frames `00001.jpg` (or `.png`), `00002.jpg`, ...: only the sampled
    /// frames are decoded. Returns the clip and the 1-based numbers of the frames used.
    public func clip(fromFrameFolder url: URL) throws(BLConvertError) -> (clip: Clip, frameNumbers: [Int]) {
        let p = internalValue
        let r = try bridged { try p.clipTensor(fromFolder: url.path) }
        return (try Clip(tensor: r.tensor), r.indices)
    }

    /// The clip of a video file (WebM, MP4/MOV, Matroska, AVI), decoded through FFmpeg's libraries
    /// as the reference's own extraction does it (`ffmpeg -vf scale=-1:256`: short side 256, the
    /// same frames, bit for bit) and numbered as its `%05d.jpg` files would be; only the sampled
    /// frames are kept, and decoding stops after the last of them. Returns the clip, the 1-based
    /// frame numbers used and the video's frame count. FFmpeg 5.1's shared libraries are loaded
    /// with the first video (from `BLCONVERT_FFMPEG_DIR` when set); without them this throws an
    /// `unsupported` error naming them.
    public func clip(fromVideo url: URL) throws(BLConvertError) -> (clip: Clip, frameNumbers: [Int], frameCount: Int) {
        let p = internalValue
        let (tensor, sampled) = try bridged { () throws -> (Tensor, SampledFrames) in
            try p.validate()
            let sampled = try VideoFrames.sample(url.path) { p.sampleIndices(frameCount: $0) }
            return (try p.tensor(fromCropped: sampled.frames.map { p.scaleAndCrop($0) }), sampled)
        }
        return (try Clip(tensor: tensor), sampled.indices, sampled.frameCount)
    }
}
