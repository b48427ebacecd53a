import ArgumentParser
import BLConvert
import BLCore
import BLSafetensors
import Foundation

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict the action classes of a video, a folder of frames or a clip tensor file.",
        discussion: """
        INPUT is one of:
          - a folder of frames 00001.jpg/.png, ...: preprocessed exactly as the
            reference evaluation does (T frames by uniform fixed-offset sampling,
            shorter side resized to --scale with PIL's antialiasing bilinear filter,
            centre crop 224, /255, ImageNet mean/std);
          - a .safetensors file with a tensor `input` (or a single tensor)
            [N, T*C, H, W];
          - a .npy file [N, T*C, H, W] (little-endian float32, C order);
          - a video file (.webm, .mp4, .mkv, .avi, ...): decoded through FFmpeg's
            libraries exactly as the reference's frame extraction does (short
            side 256, the same frames bit for bit, numbered as its %05d.jpg
            files), then the same sampling and preprocessing as a folder; only
            the sampled frames are kept.
        Prints the top-K classes of each sample with softmax probabilities.

        Examples:
          blconvert run r50.blc video_frames/ --top 5 --labels labels.txt
          blconvert run r50.blc 12345.webm --scale 256
          blconvert run r50.blc clip.npy --json
          blconvert run r50.blc frames/ --output result.safetensors
            (also writes the logits and the model input)
        """
    )

    @OptionGroup var model: ModelOptions

    @Argument(help: "A video file, a folder of frames, or a clip tensor file (.safetensors or .npy).")
    var input: String

    @Option(name: .long, help: "How many classes to print per sample.")
    var top: Int = 5

    @Option(name: .long, help: "Class names, one per line (as many lines as the model has classes).")
    var labels: String?

    @Option(name: .long, help: "Shorter side after resizing frames (224 as the released models are evaluated, 256 otherwise).")
    var scale: Int = 224

    @Option(name: .long, help: "Also write the raw logits ([N, classes], tensor 'logits') and the model input ('input') to this safetensors file.")
    var output: String?

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var weightMemory: WeightMemoryOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if top < 1 { throw ValidationError("--top must be >= 1") }
        if scale < 1 || scale > 16384 { throw ValidationError("--scale must be between 1 and 16384") }
    }

    func run() throws {
        struct Outcome { var logits: Logits; var clip: Clip; var names: [String]?; var indices: [Int]?; var seconds: Double }
        if scale < 224 { Console.err("warning: \(Self.scaleBelowCrop(scale))") }
        let o = try reportingErrors { () -> Outcome in
            if let output { try checkNotAnInput(output, option: "--output", inputs: [input, model.model] + (labels.map { [$0] } ?? [])) }
            let loaded = try model.load(threads: threads, weights: weightMemory, compute: compute)
            let names = try labels.map { try ClassLabels.read(URL(fileURLWithPath: $0), classes: loaded.configuration.classes) }
            var indices: [Int]? = nil
            let clip: Clip
            if FileKind.of(input) == .directory {
                guard loaded.configuration.inputChannels == 3 else {
                    throw BLError(.invalidArgument, "frame folders give RGB clips, but this model takes \(loaded.configuration.inputChannels) channels per frame; pass a clip tensor file")
                }
                Console.progress("decoding frames in \(input)")
                let pre = Preprocessing(frames: loaded.configuration.frames, scale: scale, crop: 224)
                let r = try pre.clip(fromFrameFolder: URL(fileURLWithPath: input))
                clip = r.clip
                indices = r.frameNumbers
            } else if FileKind.of(input) == .regular && !Clip.isTensorFile(input) {
                Console.progress("decoding \(input)")
                let pre = try loaded.preprocessingForRGB(Preprocessing(frames: loaded.configuration.frames, scale: scale, crop: 224))
                let r = try pre.clip(fromVideo: URL(fileURLWithPath: input))
                clip = r.clip
                indices = r.frameNumbers
            } else {
                clip = try Clip(contentsOf: URL(fileURLWithPath: input))
            }
            Console.progress("running")
            let t0 = MonotonicClock.seconds()
            let logits: Logits
            do {
                logits = try loaded.logits(for: clip)
            } catch {
                throw error.located(in: input)
            }
            Console.progress("")
            return Outcome(logits: logits, clip: clip, names: names, indices: indices, seconds: MonotonicClock.seconds() - t0)
        }
        if let output {
            try reportingErrors {
                let logits = try Tensor.fromFloats(o.logits.values, shape: [o.logits.count, o.logits.classes])
                try SafetensorsWriter.write([(name: "logits", tensor: logits), (name: "input", tensor: o.clip.tensor)],
                                            metadata: [("blconvert.model", model.model), ("blconvert.input", input)], to: output)
            }
        }
        let n = o.logits.count
        var samples: [JSON] = []
        var text = ""
        if let idx = o.indices { text += "frames used: \(idx.map(String.init).joined(separator: " "))\n" }
        for s in 0..<n {
            let prediction = Prediction(logits: o.logits, sample: s, top: top, labels: o.names)
            if n > 1 { text += "sample \(s):\n" }
            var items: [JSON] = []
            for (rank, c) in prediction.classes.enumerated() {
                let logit = Double(c.logit)
                var line = "  \(rank + 1). " + Format.pad(c.label ?? "class \(c.index)", 40)
                line += " " + Format.fixed(c.probability * 100, 2) + "%  (logit " + Format.fixed(logit, 4) + ")\n"
                text += line
                var item: [(String, JSON)] = [("class", JSON.int(Int64(c.index))), ("probability", JSON.double(c.probability)),
                                              ("logit", JSON.double(logit))]
                if let name = c.label { item.append(("label", JSON.string(name))) }
                items.append(JSON.object(item))
            }
            samples.append(JSON.object([("sample", JSON.int(Int64(s))), ("top", JSON.array(items))]))
        }
        if json.json {
            var obj: [(String, JSON)] = [("model", .string(model.model)), ("input", .string(input)),
                                         ("input_shape", .array(o.clip.shape.map { .int(Int64($0)) })),
                                         ("seconds", .double(o.seconds)), ("samples", .array(samples))]
            if let idx = o.indices { obj.append(("frames", .array(idx.map { .int(Int64($0)) }))) }
            Console.out(JSON.object(obj).strictJSONText)
        } else {
            Console.out(text + "(\(Format.fixed(o.seconds, 3)) s)")
        }
    }
}
