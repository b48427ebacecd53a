import BLCore
import BLMedia
import Foundation

/// Every `test.py` setting that changes the numbers of an evaluation.
package struct EvalSettings: Sendable, Equatable {
    package var modality: Modality = .rgb
    /// `--input_shape`: the side of each crop.
    package var inputShape: Int = 224
    /// The scale-up rule `int(input_shape / 0.875 + 0.5)` (false: `--disable_scaleup`).
    package var scaleUp: Bool = true
    /// `--num_crops`: 1, 3, 5 or 10.
    package var crops: Int = 1
    /// `--num_clips`.
    package var clips: Int = 1
    /// `--dense_sampling`.
    package var dense: Bool = false
    /// `--frames_per_group` (the dense sampling stride).
    package var framesPerGroup: Int = 1
    /// Frame file names (`image_tmpl`).
    package var imageTemplate: ImageTemplate
    /// The list's separator (nil: detected) and the minimum frame count of a labelled video.
    package var separator: String? = nil
    package var filterVideo: Int = 0

    package init(imageTemplate: ImageTemplate) {
        self.imageTemplate = imageTemplate
    }

    /// `GroupScale`'s size.
    package var scaleSize: Int { ViewTransform.scaleSize(inputShape: inputShape, scaleUp: scaleUp) }

    /// Views per video: crops (mirrors included) times clips.
    package var views: Int { crops * clips }

    package func validate() throws {
        guard inputShape >= 1, inputShape <= 4096 else { throw BLError(.invalidArgument, "--input-shape must be in 1...4096, got \(inputShape)") }
        guard [1, 3, 5, 10].contains(crops) else { throw BLError(.invalidArgument, "--num-crops must be 1, 3, 5 or 10, got \(crops)") }
        guard clips >= 1, clips <= 1000 else { throw BLError(.invalidArgument, "--num-clips must be in 1...1000, got \(clips)") }
        guard framesPerGroup >= 1, framesPerGroup <= 10000 else {
            throw BLError(.invalidArgument, "--frames-per-group must be in 1...10000, got \(framesPerGroup)")
        }
        guard filterVideo >= 0 else { throw BLError(.invalidArgument, "--filter-video must be >= 0, got \(filterVideo)") }
    }

    /// The reference's sampling and transforms for a model of `frames` frames per clip.
    package func builder(frames: Int) -> ClipBuilder {
        ClipBuilder(sampling: ClipSampling(frames: frames, clips: clips, dense: dense, stride: framesPerGroup,
                                           consecutive: modality.consecutiveFrames),
                    transform: ViewTransform(modality: modality, scale: scaleSize, crop: inputShape, crops: crops))
    }

    /// The pictures of frame `n` of a video folder: `os.path.join(root, folder, template.format(n))`;
    /// flow replaces `.EXT` by `_x.EXT` and `_y.EXT` (every occurrence, as `str.replace` does).
    package func picturePaths(root: String, folder: String, frame n: Int) -> [String] {
        let path = Self.pythonJoin([root, folder, imageTemplate.format(n)])
        guard modality == .flow else { return [path] }
        let ext = path.split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? path
        return ["_x", "_y"].map { path.replacingAll(".\(ext)", with: "\($0).\(ext)") }
    }

    /// `os.path.join`: an absolute part discards what came before; empty parts add nothing but a
    /// separator where needed.
    package static func pythonJoin(_ parts: [String]) -> String {
        var out = ""
        for p in parts {
            if p.hasPrefix("/") { out = p; continue }
            if out.isEmpty || out.hasSuffix("/") { out += p } else { out += "/" + p }
        }
        return out
    }

    /// The settings as recorded in outputs and results files (what must agree to merge or resume).
    package var json: JSON {
        .object([
            ("modality", .string(modality.rawValue)),
            ("input_shape", .int(Int64(inputShape))),
            ("scale_size", .int(Int64(scaleSize))),
            ("num_crops", .int(Int64(crops))),
            ("num_clips", .int(Int64(clips))),
            ("dense_sampling", .bool(dense)),
            ("frames_per_group", .int(Int64(framesPerGroup))),
            ("image_tmpl", .string(imageTemplate.text)),
            ("filter_video", .int(Int64(filterVideo))),
        ])
    }
}

extension String {
    /// Every occurrence of `target` replaced (Python's `str.replace`); `target` must not be empty.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
