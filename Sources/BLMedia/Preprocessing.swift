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

    /// The 1-based frame numbers the reference samples from a video of `frameCount` frames
    /// (`_get_val_indices` with `dense_sampling=False`, `fixed_offset=True`, one clip):
    /// - more frames than T: `tick = frameCount / T`, frame `int(tick / 2 + tick * x) + 1` for x in 0..<T;
    /// - otherwise the reference draws `np.random.choice(frameCount, T)` after `np.random.seed(0)`
    ///   and sorts them: frames repeat. The same draws are reproduced here (NumPy's MT19937).
    /// Empty for `frameCount < 1` or `frames < 1`.
    package func sampleIndices(frameCount: Int) -> [Int] {
        guard frameCount >= 1, frames >= 1 else { return [] }
        if frameCount > frames {
            let tick = Double(frameCount) / Double(frames)
            return (0..<frames).map { x in Int(tick / 2.0 + tick * Double(x)) + 1 }
        }
        var random = NumpyLegacyRandom(seed: 0)
        return random.choice(frameCount, count: frames).sorted().map { min($0 + 1, frameCount) }
    }

    /// Size after `GroupScale`: torchvision `Resize(scale)` puts the shorter side at `scale` and the
    /// longer at `int(scale * long / short)` (truncated).
    /// (0, 0) for an empty image.
    package func scaledSize(width: Int, height: Int) -> (width: Int, height: Int) {
        guard width > 0, height > 0, scale > 0 else { return (0, 0) }
        if width <= height {
            return (scale, Int(Double(scale * height) / Double(width)))
        }
        return (Int(Double(scale * width) / Double(height)), scale)
    }

    /// Top-left corner of torchvision's `CenterCrop(crop)` in an image of the given size:
    /// `int(round((size - crop) / 2))` with Python's round-half-to-even. When the image is smaller
    /// than the crop, torchvision pads it with zeros first (`(crop - size) // 2` before): the corner
    /// is then negative and the padding black.
    package func cropOrigin(width: Int, height: Int) -> (left: Int, top: Int) {
        func origin(_ size: Int) -> Int {
            if crop > size { return -((crop - size) / 2) }
            return Int((Double(size - crop) / 2.0).rounded(.toNearestOrEven))
        }
        return (origin(width), origin(height))
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

    /// `float32(v) / 255`, minus `float32(mean[c])`, divided by `float32(std[c])`, each step in float32
    /// (`ToTorchFormatTensor` then `GroupNormalize`): 256 values per channel.
    func normalizationTables() -> [[Float]] {
        (0..<3).map { c in
            let m = Float(mean[c]), s = Float(std[c])
            return (0..<256).map { v in (Float(v) / 255 - m) / s }
        }
    }

    /// [1, T*3, crop, crop] float32 from T cropped frames: channel `t * 3 + c` is colour `c` of frame `t`.
    package func tensor(fromCropped images: [Image8]) throws -> Tensor {
        try validate()
        guard images.count == frames else {
            throw BLError(.invalidArgument, "expected \(frames) frames, got \(images.count)")
        }
        for (i, img) in images.enumerated() where img.width != crop || img.height != crop || img.rgb.count != crop * crop * 3 {
            throw BLError(.invalidArgument, "frame \(i) is \(img.width)x\(img.height), expected the \(crop)x\(crop) crop")
        }
        let tables = normalizationTables()
        let plane = crop * crop
        return try Tensor.make(dtype: .float32, shape: [1, frames * 3, crop, crop]) { raw in
            let dst = raw.bindMemory(to: Float.self)
            for (t, img) in images.enumerated() {
                img.rgb.withUnsafeBufferPointer { src in
                    for c in 0..<3 {
                        tables[c].withUnsafeBufferPointer { table in
                            let base = (t * 3 + c) * plane
                            for i in 0..<plane { dst[base + i] = table[Int(src[i * 3 + c])] }
                        }
                    }
                }
            }
        }
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
        let indices = sampleIndices(frameCount: folder.frameCount)
        // Decode, scale and crop each distinct frame once (frames repeat when the video is shorter
        // than T), two frames at a time.
        let distinct = Array(Set(indices)).sorted()
        let results = Self.parallelMap(distinct) { n -> Result<(width: Int, height: Int, image: Image8), BLError> in
            let file = folder.files[n - 1]
            do {
                let img = try ImageDecoder.decode(path: file)
                return .success((img.width, img.height, scaleAndCrop(img)))
            } catch let e as BLError {
                return .failure(e.inFile(file))
            } catch {
                return .failure(BLError(.io, "\(error)", file: file))
            }
        }
        var cropped: [Int: Image8] = [:]
        var firstSize: (Int, Int, String)?
        for (n, result) in zip(distinct, results) {
            let r = try result.get()
            let file = folder.files[n - 1]
            if let (w, h, other) = firstSize, w != r.width || h != r.height {
                throw BLError(.mismatch, "frame is \(r.width)x\(r.height) but \((other as NSString).lastPathComponent) is \(w)x\(h): all frames of a video must have one size", file: file)
            }
            if firstSize == nil { firstSize = (r.width, r.height, file) }
            cropped[n] = r.image
        }
        let frames = try indices.map { n -> Image8 in
            guard let img = cropped[n] else { throw BLError(.format, "frame \(n) was not decoded", file: path) }
            return img
        }
        return (try tensor(fromCropped: frames), indices)
    }

    /// `body` over `items` on up to two threads (the work per frame is independent), results in order.
    static func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ body: @Sendable (T) -> R) -> [R] {
        if items.count < 2 { return items.map(body) }
        let out = UnsafeMutableBufferPointer<R?>.allocate(capacity: items.count)
        out.initialize(repeating: nil)
        defer { out.deinitialize(); out.deallocate() }
        nonisolated(unsafe) let slots = out
        let workers = min(2, items.count)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < items.count {
                slots[i] = body(items[i])  // each index is written by exactly one worker
                i += workers
            }
        }
        return out.compactMap { $0 }
    }
}
