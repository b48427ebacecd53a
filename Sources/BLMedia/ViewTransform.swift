import BLCore
import Foundation

/// What one frame of a clip is made of: RGB pictures, or optical flow as grayscale `_x`/`_y`
/// picture pairs (the reference reads 5 consecutive pairs per sampled frame: 10 channels).
package enum Modality: String, Sendable, CaseIterable {
    case rgb, flow

    /// Pictures read per frame number (flow: x then y).
    package var imagesPerFrame: Int { self == .rgb ? 1 : 2 }
    /// Channels each picture gives (Pillow mode "RGB" or "L").
    package var channelsPerImage: Int { self == .rgb ? 3 : 1 }
    /// Consecutive frames read per sampled index.
    package var consecutiveFrames: Int { self == .rgb ? 1 : 5 }
    /// Channels per sampled frame, the model's input channels C.
    package var channelsPerFrame: Int { consecutiveFrames * imagesPerFrame * channelsPerImage }
    /// `test.py`'s mean and std.
    package var referenceMean: [Double] { self == .rgb ? [0.485, 0.456, 0.406] : [0.5] }
    package var referenceStd: [Double] { self == .rgb ? [0.229, 0.224, 0.225] : [(0.229 + 0.224 + 0.225) / 3] }
}

/// The reference evaluation transforms after sampling (`test.py`'s augmentor):
/// - 1 crop: `GroupScale(scale)` (shorter side to `scale`, Pillow's antialiased bilinear) and
///   `GroupCenterCrop(crop)` (torchvision's rounding, zero padding when smaller);
/// - 3, 5 or 10 crops: `GroupOverSample(crop, scale)`: scale, then crops at the fixed offsets of
///   `(size - crop) // 4` steps: 3 = top, bottom, centre for portrait frames (width < height), else
///   left, right, centre; 5 = the four corners and the centre; 10 = those 5, each followed by its
///   horizontal mirror (flow: the mirrored x pictures are also inverted, `255 - v`);
/// - `Stack`, `ToTorchFormatTensor` (/255) and `GroupNormalize(mean, std)` (the channel `c` of the
///   stack uses `mean[c % mean.count]`; float32 arithmetic as torch).
///
/// The views come out as `eval_a_batch` reshapes the stack: view `g * clips + k` is crop group `g`
/// (a crop, or its mirror) of clip `k`, `T * C` channels: frame-major, then consecutive frame, then
/// picture (flow x, y), then colour.
package struct ViewTransform: Sendable, Equatable {
    package var modality: Modality
    /// The shorter side after `GroupScale`.
    package var scale: Int
    /// The side of each square crop (`--input_shape`).
    package var crop: Int
    /// 1, 3, 5 or 10 (`--num_crops`).
    package var crops: Int
    package var mean: [Double]
    package var std: [Double]

    package init(modality: Modality = .rgb, scale: Int, crop: Int, crops: Int = 1,
                 mean: [Double]? = nil, std: [Double]? = nil) {
        self.modality = modality
        self.scale = scale
        self.crop = crop
        self.crops = crops
        self.mean = mean ?? modality.referenceMean
        self.std = std ?? modality.referenceStd
    }

    /// `test.py`'s scale size: `int(input_shape / 0.875 + 0.5)`, or the input shape itself with
    /// `--disable_scaleup`.
    package static func scaleSize(inputShape: Int, scaleUp: Bool) -> Int {
        scaleUp ? Int(Double(inputShape) / 0.875 + 0.5) : inputShape
    }

    package func validate() throws {
        guard scale >= 1, scale <= 16384 else { throw BLError(.invalidArgument, "scale must be in 1...16384, got \(scale)") }
        guard crop >= 1, crop <= 16384 else { throw BLError(.invalidArgument, "crop must be in 1...16384, got \(crop)") }
        guard [1, 3, 5, 10].contains(crops) else {
            throw BLError(.invalidArgument, "the number of crops must be 1, 3, 5 or 10, got \(crops)")
        }
        guard !mean.isEmpty, mean.count == std.count, modality.channelsPerImage % mean.count == 0 else {
            throw BLError(.invalidArgument, "mean and std need \(modality.channelsPerImage) values (or 1), got \(mean.count) and \(std.count)")
        }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
            throw BLError(.invalidArgument, "mean must be finite and std finite and non-zero")
        }
    }

    /// Whether each crop is followed by its mirror (10 crops).
    package var flips: Bool { crops == 10 }

    /// Views per clip: the crops, mirrors included.
    package var cropGroups: Int { crops }

    /// Size after `GroupScale`: torchvision `Resize(scale)` puts the shorter side at `scale` and the
    /// longer at `int(scale * long / short)`. (0, 0) for an empty image.
    package static func scaledSize(width: Int, height: Int, scale: Int) -> (width: Int, height: Int) {
        guard width > 0, height > 0, scale > 0 else { return (0, 0) }
        if width <= height {
            return (scale, Int(Double(scale * height) / Double(width)))
        }
        return (Int(Double(scale * width) / Double(height)), scale)
    }

    /// Top-left corner of torchvision's `CenterCrop(crop)`: `int(round((size - crop) / 2))`, half to
    /// even; negative (zero padding of `(crop - size) // 2` before) when the image is smaller.
    package static func centerCropOrigin(width: Int, height: Int, crop: Int) -> (left: Int, top: Int) {
        func origin(_ size: Int) -> Int {
            if crop > size { return -((crop - size) / 2) }
            return Int((Double(size - crop) / 2.0).rounded(.toNearestOrEven))
        }
        return (origin(width), origin(height))
    }

    /// The crop corners in a scaled image of the given size, in the reference's order (mirrors
    /// not listed: with 10 crops each of the 5 is followed by its mirror).
    package func cropOrigins(width: Int, height: Int) -> [(left: Int, top: Int)] {
        if crops == 1 { return [Self.centerCropOrigin(width: width, height: height, crop: crop)] }
        let w = ClipSampling.floorDiv(width - crop, 4), h = ClipSampling.floorDiv(height - crop, 4)
        if crops == 3 {
            if width < height { return [(2 * w, 0), (2 * w, 4 * h), (2 * w, 2 * h)] }
            return [(0, 2 * h), (4 * w, 2 * h), (2 * w, 2 * h)]
        }
        // GroupMultiScaleCrop.fill_fix_offset(more_fix_crop=False)
        return [(0, 0), (4 * w, 0), (0, 4 * h), (4 * w, 4 * h), (2 * w, 2 * h)]
    }

    /// `x / 255`, minus the mean, over the std, in float32 as torch computes it, per byte value;
    /// one table per mean entry.
    func normalizationTables() -> [[Float]] {
        zip(mean, std).map { m, s in
            let m = Float(m), s = Float(s)
            return (0..<256).map { v in (Float(v) / 255 - m) / s }
        }
    }

    /// The `[views, T * C, crop, crop]` float32 tensor from the scaled pictures of the clip frames.
    /// `frames[i]` are the pictures (1 for RGB, x and y for flow) of the `i`-th frame in load order
    /// (`clips * T * consecutive` of them, as `ClipSampling.frameNumbers`); every picture has the
    /// same size. Flow pictures must be grayscale (their red channel is read).
    package func views(scaled frames: [[Image8]], clips: Int) throws -> Tensor {
        try validate()
        let consecutive = modality.consecutiveFrames
        let perView = frames.count / max(clips, 1)
        guard clips >= 1, frames.count == perView * clips, perView % consecutive == 0, perView > 0 else {
            throw BLError(.invalidArgument, "\(frames.count) frames do not split into \(clips) clips of \(consecutive)-frame groups")
        }
        guard let first = frames.first?.first else { throw BLError(.invalidArgument, "no pictures") }
        let (width, height) = (first.width, first.height)
        for group in frames {
            guard group.count == modality.imagesPerFrame,
                  group.allSatisfy({ $0.width == width && $0.height == height && $0.isConsistent }) else {
                throw BLError(.invalidArgument, "every frame needs \(modality.imagesPerFrame) pictures of \(width)x\(height)")
            }
        }
        let origins = cropOrigins(width: width, height: height)
        let images = modality.imagesPerFrame, colours = modality.channelsPerImage
        let channelsPerView = perView * images * colours
        let plane = crop * crop
        let tables = normalizationTables()
        let viewCount = origins.count * (flips ? 2 : 1) * clips
        return try Tensor.make(dtype: .float32, shape: [viewCount, channelsPerView, crop, crop]) { raw in
            let dst = raw.bindMemory(to: Float.self)
            var group = 0
            for origin in origins {
                for mirrored in (flips ? [false, true] : [false]) {
                    for clip in 0..<clips {
                        let view = group * clips + clip
                        for f in 0..<perView {
                            for (j, img) in frames[clip * perView + f].enumerated() {
                                // ImageOps.invert on the mirrored flow x pictures (even positions in the group).
                                let invert = mirrored && modality == .flow && j % 2 == 0
                                for c in 0..<colours {
                                    let channel = (f * images + j) * colours + c
                                    let base = (view * channelsPerView + channel) * plane
                                    tables[channel % tables.count].withUnsafeBufferPointer { table in
                                        Self.writePlane(img, colour: c, colours: 3, left: origin.left, top: origin.top,
                                                        crop: crop, mirrored: mirrored, invert: invert,
                                                        table: table, into: dst.baseAddress! + base)
                                    }
                                }
                            }
                        }
                    }
                    group += 1
                }
            }
        }
    }

    /// One normalised channel of the `crop` x `crop` region at (`left`, `top`) (zero outside the
    /// picture, as Pillow's `crop`), mirrored and inverted as asked.
    static func writePlane(_ img: Image8, colour: Int, colours: Int, left: Int, top: Int, crop: Int,
                           mirrored: Bool, invert: Bool, table: UnsafeBufferPointer<Float>,
                           into out: UnsafeMutablePointer<Float>) {
        let w = img.width, h = img.height
        img.rgb.withUnsafeBufferPointer { src in
            for y in 0..<crop {
                let sy = top + y
                let row = out + y * crop
                for x in 0..<crop {
                    let sx = mirrored ? left + crop - 1 - x : left + x
                    var v = 0
                    if sy >= 0 && sy < h && sx >= 0 && sx < w { v = Int(src[(sy * w + sx) * colours + colour]) }
                    if invert { v = 255 - v }
                    row[x] = table[v]
                }
            }
        }
    }
}

/// Builds the reference's views of one video: samples the frame numbers, reads each distinct
/// picture once, scales it, and crops, mirrors, stacks and normalises them.
package struct ClipBuilder: Sendable {
    package var sampling: ClipSampling
    package var transform: ViewTransform

    package init(sampling: ClipSampling, transform: ViewTransform) {
        self.sampling = sampling
        self.transform = transform
    }

    /// Views of the video (`numFrames` frames from `startFrame`): `[views, T * C, crop, crop]` and
    /// the frame numbers read, in load order. `paths(n)` names the pictures of frame `n` (flow: x,
    /// then y); up to `threads` pictures are decoded at once.
    ///
    /// Errors (`BLError`, naming the file): unreadable or corrupt pictures, pictures of different
    /// sizes, colour pictures given as flow.
    package func build(numFrames: Int, startFrame: Int = 1, threads: Int = 1,
                       paths: (Int) -> [String]) throws -> (tensor: Tensor, frameNumbers: [Int]) {
        try build(numFrames: numFrames, startFrame: startFrame, threads: threads) { distinct in
            let files = distinct.map(paths)
            let decoded = Self.parallelMap(files.flatMap { $0 }, threads: threads) { file -> Result<Image8, BLError> in
                do {
                    return .success(try ImageDecoder.decode(path: file))
                } catch let e as BLError {
                    return .failure(e.inFile(file))
                } catch {
                    return .failure(BLError(.io, "\(error)", file: file))
                }
            }
            var k = 0
            return try files.map { group in
                try group.map { file in
                    defer { k += 1 }
                    return (try decoded[k].get(), file)
                }
            }
        }
    }

    /// As `build(numFrames:startFrame:threads:paths:)`, with the pictures of the distinct frame
    /// numbers given by `pictures` (in the order asked, each with the name errors should use), e.g.
    /// decoded from a video file.
    package func build(numFrames: Int, startFrame: Int = 1, threads: Int = 1,
                       pictures: ([Int]) throws -> [[(image: Image8, name: String)]]) throws -> (tensor: Tensor, frameNumbers: [Int]) {
        try transform.validate()
        guard sampling.frames >= 1, sampling.clips >= 1, sampling.stride >= 1 else {
            throw BLError(.invalidArgument, "frames, clips and stride must be at least 1 (got \(sampling.frames), \(sampling.clips), \(sampling.stride))")
        }
        let numbers = sampling.frameNumbers(numFrames: numFrames, startFrame: startFrame)
        let distinct = Array(Set(numbers)).sorted()
        let given = try pictures(distinct)
        guard given.count == distinct.count, given.allSatisfy({ $0.count == transform.modality.imagesPerFrame }) else {
            throw BLError.invariant("\(given.count) picture groups for \(distinct.count) frames")
        }
        let modality = transform.modality, scale = transform.scale
        let flat = given.flatMap { $0 }
        let results = Self.parallelMap(flat.indices.map { $0 }, threads: threads) { i -> Result<(width: Int, height: Int, image: Image8), BLError> in
            let (img, name) = flat[i]
            if modality == .flow && !Self.isGray(img) {
                return .failure(BLError(.unsupported, "flow pictures must be grayscale (Pillow mode L); this one has colour", file: name))
            }
            let size = ViewTransform.scaledSize(width: img.width, height: img.height, scale: scale)
            return .success((img.width, img.height, PillowResample.resizeBilinear(img, width: size.width, height: size.height)))
        }
        var scaled: [Int: [Image8]] = [:]
        var firstSize: (Int, Int, String)?
        var k = 0
        for (n, group) in zip(distinct, given) {
            var out: [Image8] = []
            for (_, name) in group {
                let r = try results[k].get()
                k += 1
                if let (w, h, other) = firstSize, w != r.width || h != r.height {
                    throw BLError(.mismatch, "frame is \(r.width)x\(r.height) but \(other.split(separator: "/").last.map(String.init) ?? other) is \(w)x\(h): all frames of a video must have one size", file: name)
                }
                if firstSize == nil { firstSize = (r.width, r.height, name) }
                out.append(r.image)
            }
            scaled[n] = out
        }
        let frames = try numbers.map { n -> [Image8] in
            guard let f = scaled[n] else { throw BLError.invariant("frame \(n) was not scaled") }
            return f
        }
        return (try transform.views(scaled: frames, clips: sampling.clips), numbers)
    }

    /// Whether every pixel has equal red, green and blue (a grayscale picture as decoded).
    static func isGray(_ img: Image8) -> Bool {
        img.rgb.withUnsafeBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                if p[i] != p[i + 1] || p[i] != p[i + 2] { return false }
                i += 3
            }
            return true
        }
    }

    /// `body` over `items` on up to `threads` threads, results in order.
    static func parallelMap<T: Sendable, R: Sendable>(_ items: [T], threads: Int, _ body: @Sendable (T) -> R) -> [R] {
        let workers = min(max(threads, 1), items.count)
        if workers < 2 { return items.map(body) }
        let out = UnsafeMutableBufferPointer<R?>.allocate(capacity: items.count)
        out.initialize(repeating: nil)
        defer { out.deinitialize(); out.deallocate() }
        nonisolated(unsafe) let slots = out
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
