import BLCore
import Foundation

/// The reference evaluation preprocessing of bLVNet-TAM (`test.py` with one clip and one crop):
/// `VideoDataSet` uniform fixed-offset sampling, `GroupScale(scale)`, `GroupCenterCrop(crop)`,
/// `Stack`, `ToTorchFormatTensor`, `GroupNormalize(mean, std)`.
///
/// Checked to the bit against the reference's output for PNG and JPEG frames (scale 224 and 256).
/// Where the reference cannot go, this goes further on purpose: the reference loads frames without
/// `convert("RGB")`, so only RGB frames work there, while every PNG/JPEG colour type is converted
/// here as `convert("RGB")` would; and sampled frames of different sizes are refused here although
/// the reference would scale each on its own.
package struct Preprocessing: Sendable {
    /// T, the number of frames sampled per clip (the reference's `groups`).
    package var frames: Int
    /// The shorter image side after scaling (`GroupScale`): 224 with `--disable_scaleup`, else 256.
    package var scale: Int = 224
    /// The side of the centre crop.
    package var crop: Int = 224
    /// Per-channel mean and std as the reference passes them (Python floats; rounded to float32 as torch does).
    package var mean: [Double] = [0.485, 0.456, 0.406]
    package var std: [Double] = [0.229, 0.224, 0.225]

    package init(frames: Int, scale: Int = 224, crop: Int = 224,
                mean: [Double] = [0.485, 0.456, 0.406], std: [Double] = [0.229, 0.224, 0.225]) {
        self.frames = frames
        self.scale = scale
        self.crop = crop
        self.mean = mean
        self.std = std
    }

    package func validate() throws {
        guard frames >= 1 else { throw BLError(.invalidArgument, "frames must be at least 1, got \(frames)") }
        guard scale >= 1, scale <= 16384 else { throw BLError(.invalidArgument, "scale must be in 1...16384, got \(scale)") }
        guard crop >= 1, crop <= 16384 else { throw BLError(.invalidArgument, "crop must be in 1...16384, got \(crop)") }
        guard mean.count == 3, std.count == 3 else {
            throw BLError(.invalidArgument, "mean and std need 3 values (RGB), got \(mean.count) and \(std.count)")
        }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
            throw BLError(.invalidArgument, "mean must be finite and std finite and non-zero")
        }
    }

    /// The reference's sampling and transforms for these settings (one clip, one centre crop).
    package var builder: ClipBuilder {
        ClipBuilder(sampling: ClipSampling(frames: frames),
                    transform: ViewTransform(modality: .rgb, scale: scale, crop: crop, crops: 1, mean: mean, std: std))
    }

    /// The 1-based frame numbers the reference samples from a video of `frameCount` frames
    /// (`_get_val_indices` with `dense_sampling=False`, `fixed_offset=True`, one clip; see
    /// `ClipSampling`):
    /// - more frames than T: `tick = frameCount / T`, frame `int(tick / 2 + tick * x) + 1` for x in 0..<T;
    /// - otherwise the reference draws `np.random.choice(frameCount, T)` after `np.random.seed(0)`
    ///   and sorts them: frames repeat. The same draws are reproduced here (NumPy's MT19937).
    /// Empty for `frameCount < 1` or `frames < 1`.
    package func sampleIndices(frameCount: Int) -> [Int] {
        guard frameCount >= 1 else { return [] }
        return ClipSampling(frames: frames).frameNumbers(numFrames: frameCount)
    }

    /// Size after `GroupScale` (`ViewTransform.scaledSize`). (0, 0) for an empty image.
    package func scaledSize(width: Int, height: Int) -> (width: Int, height: Int) {
        ViewTransform.scaledSize(width: width, height: height, scale: scale)
    }

    /// Top-left corner of torchvision's `CenterCrop(crop)` (`ViewTransform.centerCropOrigin`).
    package func cropOrigin(width: Int, height: Int) -> (left: Int, top: Int) {
        ViewTransform.centerCropOrigin(width: width, height: height, crop: crop)
    }

    /// `GroupScale` then `GroupCenterCrop` of one frame: a `crop` x `crop` image.
    package func scaleAndCrop(_ img: Image8) -> Image8 {
        let size = scaledSize(width: img.width, height: img.height)
        let o = cropOrigin(width: size.width, height: size.height)
        // Only the crop window is resampled (bounded by crop x crop whatever the aspect ratio).
        let (x0, y0) = (max(o.left, 0), max(o.top, 0))
        let window = PillowResample.resizeBilinear(img, width: size.width, height: size.height,
                                                   columns: x0..<(o.left + crop), rows: y0..<(o.top + crop))
        if o.left == 0 && o.top == 0 && window.width == crop && window.height == crop { return window }
        return window.cropped(left: o.left - x0, top: o.top - y0, width: crop, height: crop)
    }

    /// The float32 value of each byte per colour channel (`ViewTransform`'s tables).
    func normalizationTables() -> [[Float]] { builder.transform.normalizationTables() }

    /// [1, T*3, crop, crop] float32 from T cropped frames: channel `t * 3 + c` is colour `c` of frame `t`.
    package func tensor(fromCropped images: [Image8]) throws -> Tensor {
        try validate()
        guard images.count == frames else {
            throw BLError(.invalidArgument, "expected \(frames) frames, got \(images.count)")
        }
        for (i, img) in images.enumerated() where img.width != crop || img.height != crop || img.rgb.count != crop * crop * 3 {
            throw BLError(.invalidArgument, "frame \(i) is \(img.width)x\(img.height), expected the \(crop)x\(crop) crop")
        }
        return try builder.transform.views(scaled: images.map { [$0] }, clips: 1)
    }

    /// The reference clip for a folder of frames: samples T frame numbers, decodes those frames,
    /// scales, crops, stacks and normalises them. Returns the [1, T*3, crop, crop] float32 tensor
    /// and the 1-based frame numbers used.
    ///
    /// Errors (`BLError`, naming the folder or file): missing folder, no frames, gaps in the numbering,
    /// mixed PNG/JPEG, an unreadable or corrupt frame, sampled frames of different sizes.
    package func clipTensor(fromFolder path: String) throws -> (tensor: Tensor, indices: [Int]) {
        try validate()
        let folder = try FrameFolder(path: path)
        // Each distinct frame (frames repeat when the video is shorter than T) is decoded, scaled
        // and cropped once, two frames at a time.
        let r = try builder.build(numFrames: folder.frameCount, threads: 2) { [folder.files[$0 - 1]] }
        return (r.tensor, r.frameNumbers)
    }
}
