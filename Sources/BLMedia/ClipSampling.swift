/// Which frames the reference evaluation reads from a video: `VideoDataSet._get_val_indices`
/// (`fixed_offset=True`, as `test.py` runs it) and the frame numbers `__getitem__` then loads.
///
/// - Uniform sampling (the default): per clip `k` of `clips`, the offset
///   `o = k + (-clips // 2 + 1)` (offsets `range(-clips // 2 + 1, clips // 2 + 1)`, Python floor
///   division). When the video has more than T frames, `tick = frames / T`, the offset is clamped to
///   `[-tick/2, tick/2 - 1e-4]` and frame `int(tick / 2 + o + tick * x)` for x in 0..<T; otherwise
///   `np.random.seed(k)` then `np.random.choice(frames, T)` (with replacement), sorted.
/// - Dense sampling (`--dense-sampling`, I3D style): T frames `stride` apart from clip starts
///   `np.linspace(0, max(1, 1 + frames - stride * T) - 1, clips, dtype=int)`, wrapping modulo the
///   frame count (not sorted).
/// - `frames` there is `max(1, num_frames - consecutive + 1)` (flow reads 5 consecutive frames per
///   sampled index).
///
/// The loaded frame number of sampled index `s` (1-based) and consecutive frame `i` is
/// `min(s + start_frame - 1 + i, num_frames)`, as the reference clamps it (to the frame count,
/// not to the end frame).
package struct ClipSampling: Sendable, Equatable {
    /// T, frames per clip (the reference's `groups`).
    package var frames: Int
    /// Clips per video (`--num_clips`).
    package var clips: Int
    /// I3D-style dense sampling (`--dense_sampling`).
    package var dense: Bool
    /// The dense sampling stride (`--frames_per_group`); uniform sampling ignores it.
    package var stride: Int
    /// Consecutive frames read per sampled index: 1 for RGB, 5 for flow.
    package var consecutive: Int

    package init(frames: Int, clips: Int = 1, dense: Bool = false, stride: Int = 1, consecutive: Int = 1) {
        self.frames = frames
        self.clips = clips
        self.dense = dense
        self.stride = stride
        self.consecutive = consecutive
    }

    /// Python's `a // b` for b > 0.
    static func floorDiv(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// `range(-clips // 2 + 1, clips // 2 + 1)`: the uniform sampler's offsets, one per clip.
    package var clipOffsets: [Int] {
        let first = Self.floorDiv(-clips, 2) + 1
        return Array(first..<(clips / 2 + 1))
    }

    /// `_get_val_indices`: `clips * frames` 1-based indices into the sampled range, clips one after
    /// the other. Empty when `frames` or `clips` is below 1.
    package func sampledIndices(numFrames: Int) -> [Int] {
        guard frames >= 1, clips >= 1 else { return [] }
        let maxIndex = max(1, numFrames - consecutive + 1)
        var out: [Int] = []
        out.reserveCapacity(frames * clips)
        if dense {
            let samplePos = max(1, 1 + maxIndex - stride * frames)
            for start in Self.linspaceInt(0, Double(samplePos - 1), count: clips) {
                for i in 0..<frames { out.append((i * stride + start) % maxIndex + 1) }
            }
            return out
        }
        let offsets = clipOffsets
        for (k, offset) in offsets.enumerated() {
            var clip: [Int]
            if maxIndex > frames {
                let tick = Double(maxIndex) / Double(frames)
                var o = Double(offset)
                if o >= tick / 2.0 {
                    o = tick / 2.0 - 1e-4
                } else if o < -tick / 2.0 {
                    o = -tick / 2.0
                }
                // Python evaluates `tick / 2.0 + offset + tick * x` left to right.
                clip = (0..<frames).map { x in Int(tick / 2.0 + o + tick * Double(x)) }
            } else {
                var random = NumpyLegacyRandom(seed: UInt32(k))
                clip = random.choice(maxIndex, count: frames)
            }
            clip.sort()
            out += clip.map { $0 + 1 }
        }
        return out
    }

    /// `np.linspace(start, stop, count, dtype=int)` for start <= stop: the float64 values NumPy
    /// computes (`i * step + start`, the last one exactly `stop`), floored.
    static func linspaceInt(_ start: Double, _ stop: Double, count: Int) -> [Int] {
        guard count > 0 else { return [] }
        if count == 1 { return [Int(start.rounded(.down))] }
        let div = Double(count - 1)
        let delta = stop - start
        let step = delta / div
        return (0..<count).map { i -> Int in
            if i == count - 1 { return Int(stop.rounded(.down)) }
            let y = step == 0 ? Double(i) / div * delta + start : Double(i) * step + start
            return Int(y.rounded(.down))
        }
    }

    /// The frame numbers `__getitem__` loads, in load order: per sampled index, `consecutive`
    /// frames (`clips * frames * consecutive` in all). `startFrame` is the list's start frame.
    package func frameNumbers(numFrames: Int, startFrame: Int = 1) -> [Int] {
        var out: [Int] = []
        for s in sampledIndices(numFrames: numFrames) {
            for i in 0..<consecutive { out.append(min(s + startFrame - 1 + i, numFrames)) }
        }
        return out
    }
}
