import ArgumentParser
import BLCore
import BLEngine
import BLMedia
import BLSafetensors
import BLVerify
#if canImport(Glibc)
import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict the action classes of a clip: a folder of frames or a clip tensor file.",
        discussion: """
        INPUT is one of:
          - a folder of frames 00001.jpg/.png, ...: preprocessed exactly as the
            reference evaluation does (T frames by uniform fixed-offset sampling,
            shorter side resized to --scale with PIL's antialiasing bilinear filter,
            centre crop 224, /255, ImageNet mean/std);
          - a .safetensors file with a tensor `input` (or a single tensor)
            [N, T*C, H, W];
          - a .npy file [N, T*C, H, W] (little-endian float32, C order).
        Prints the top-K classes of each sample with softmax probabilities.

        Examples:
          blconvert run r50.blc video_frames/ --top 5 --labels labels.txt
          blconvert run r50.blc clip.npy --json
          blconvert run r50.blc frames/ --output result.safetensors
            (also writes the logits and the model input)
        """
    )

    @OptionGroup var model: ModelOptions

    @Argument(help: "A folder of frames, or a clip tensor file (.safetensors or .npy).")
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
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if top < 1 { throw ValidationError("--top must be >= 1") }
        if scale < 1 || scale > 16384 { throw ValidationError("--scale must be between 1 and 16384") }
    }

    func run() throws {
        struct Outcome { var logits: Tensor; var input: Tensor; var names: [String]?; var indices: [Int]?; var seconds: Double }
        let o = try reportingErrors { () -> Outcome in
            if let output { try checkNotAnInput(output, option: "--output", inputs: [input, model.model] + (labels.map { [$0] } ?? [])) }
            let loaded = try ModelLoader.load(model)
            let names = try labels.map { try Self.readLabels($0, classes: loaded.config.numClasses) }
            var indices: [Int]? = nil
            let clip: Tensor
            if ModelLoader.isDirectory(input) {
                guard loaded.config.inputChannels == 3 else {
                    throw BLError(.invalidArgument, "frame folders give RGB clips, but this model takes \(loaded.config.inputChannels) channels per frame; pass a clip tensor file")
                }
                Console.progress("decoding frames in \(input)")
                let pre = Preprocessing(frames: loaded.config.frames, scale: scale, crop: 224)
                let r = try pre.clipTensor(fromFolder: input)
                clip = r.tensor
                indices = r.indices
            } else {
                clip = try Self.loadClipTensor(input)
            }
            let engine = try Engine(graph: loaded.graph, weights: loaded.weights, context: threads.context,
                                    weightConversion: weightMemory.conversion(for: loaded.dtype))
            Console.progress("running")
            let t0 = now()
            let logits: Tensor
            do {
                logits = try engine.run(clip)
            } catch let e as BLError {
                throw e.inFile(input)
            }
            Console.progress("")
            return Outcome(logits: logits, input: clip, names: names, indices: indices, seconds: now() - t0)
        }
        if let output {
            try reportingErrors {
                try SafetensorsWriter.write([(name: "logits", tensor: o.logits), (name: "input", tensor: o.input)],
                                            metadata: [("blconvert.model", model.model), ("blconvert.input", input)], to: output)
            }
        }
        let n = o.logits.shape[0], k = o.logits.shape.count > 1 ? o.logits.shape[1] : 1
        let values = o.logits.floats()
        var samples: [JSON] = []
        var text = ""
        if let idx = o.indices { text += "frames used: \(idx.map(String.init).joined(separator: " "))\n" }
        for s in 0..<n {
            let row: ArraySlice<Float> = values[(s * k)..<((s + 1) * k)]
            let probs: [Double] = Ranking.softmax(row)
            let best: [Int] = Ranking.topK(row, min(top, k))
            if n > 1 { text += "sample \(s):\n" }
            var items: [JSON] = []
            for (rank, c) in best.enumerated() {
                let name: String? = o.names?[c]
                let logit = Double(row[row.startIndex + c])
                var line = "  \(rank + 1). " + Format.pad(name ?? "class \(c)", 40)
                line += " " + Format.fixed(probs[c] * 100, 2) + "%  (logit " + Format.fixed(logit, 4) + ")\n"
                text += line
                var item: [(String, JSON)] = [("class", JSON.int(Int64(c))), ("probability", JSON.double(probs[c])),
                                              ("logit", JSON.double(logit))]
                if let name { item.append(("label", JSON.string(name))) }
                items.append(JSON.object(item))
            }
            samples.append(JSON.object([("sample", JSON.int(Int64(s))), ("top", JSON.array(items))]))
        }
        if json.json {
            var obj: [(String, JSON)] = [("model", .string(model.model)), ("input", .string(input)),
                                         ("input_shape", .array(o.input.shape.map { .int(Int64($0)) })),
                                         ("seconds", .double(o.seconds)), ("samples", .array(samples))]
            if let idx = o.indices { obj.append(("frames", .array(idx.map { .int(Int64($0)) }))) }
            Console.out(JSON.object(obj).strictJSONText)
        } else {
            Console.out(text + "(\(Format.fixed(o.seconds, 3)) s)")
        }
    }

    static func loadClipTensor(_ path: String) throws -> Tensor {
        let file = try MappedFile(path: path)
        let b = file.bytes
        if b.count >= 6 && b[0] == 0x93 && b[1] == UInt8(ascii: "N") && b[2] == UInt8(ascii: "U") {
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

    static func readLabels(_ path: String, classes: Int) throws -> [String] {
        let f = try MappedFile(path: path)
        guard let text = String(validating: Array(f.bytes), as: UTF8.self) else {
            throw BLError(.format, "labels file is not UTF-8 text", file: path)
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.hasSuffix("\r") ? $0.dropLast() : $0).trimmingSpaces
        }
        while lines.last == "" { lines.removeLast() }
        guard lines.count == classes else {
            throw BLError(.mismatch, "labels file has \(lines.count) lines but the model has \(classes) classes", file: path)
        }
        return lines
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
