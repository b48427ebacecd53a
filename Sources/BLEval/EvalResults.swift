import BLCore
import Foundation

/// One video's outcome: its mean logits over the views, or why it could not be evaluated.
package struct VideoResult: Sendable, Equatable {
    package var entry: VideoEntry
    /// Logits averaged over the views (float64 mean of the model's float32 outputs).
    package var logits: [Double]?
    /// Softmax of `logits` (`eval_a_batch`: average, then softmax).
    package var probs: [Double]?
    /// Classes by decreasing probability, the first five (ties: lower class first).
    package var top5: [Int]?
    package var views: Int
    package var error: String?

    package init(entry: VideoEntry, logits: [Double], views: Int) {
        self.entry = entry
        self.logits = logits
        self.views = views
        let p = Ranking.softmax(logits[...])
        probs = p
        top5 = Ranking.topK(p[...], 5)
    }

    package init(entry: VideoEntry, error: String) {
        self.entry = entry
        self.views = 0
        self.error = error
    }

    /// Counted in top-1/top-5: every labelled video, failed ones as misses.
    package var scored: Bool { !entry.labels.isEmpty }

    /// Whether one of the video's labels is among the `k` most probable classes (false for a
    /// failed video). With one label this is `test.py`'s `accuracy`.
    package func hit(_ k: Int) -> Bool {
        guard let top5 else { return false }
        let top = top5.prefix(k)
        return entry.labels.contains { top.contains($0) }
    }
}

/// What identifies an evaluation: the model, the list and the settings (and the shard). Results
/// of two runs merge, and a results file resumes, only when these agree.
package struct EvalHeader: Sendable, Equatable {
    /// The model as given on the command line, and its fingerprint (what is compared).
    package var model: String
    package var fingerprint: String
    package var listPath: String
    package var listSHA256: String
    package var separator: String
    /// Videos in the list after `--filter-video`, and whether it is labelled.
    package var videos: Int
    package var labelled: Bool
    package var settings: JSON
    package var shard: Shard

    package init(model: String, fingerprint: String, listPath: String, listSHA256: String, separator: String,
                 videos: Int, labelled: Bool, settings: JSON, shard: Shard) {
        self.model = model
        self.fingerprint = fingerprint
        self.listPath = listPath
        self.listSHA256 = listSHA256
        self.separator = separator
        self.videos = videos
        self.labelled = labelled
        self.settings = settings
        self.shard = shard
    }

    var fields: [(String, JSON)] {
        [("model", .string(model)), ("model_fingerprint", .string(fingerprint)),
         ("list", .object([("path", .string(listPath)), ("sha256", .string(listSHA256)),
                           ("separator", .string(separator)), ("videos", .int(Int64(videos))),
                           ("labelled", .bool(labelled))])),
         ("settings", settings), ("shard", shard.json)]
    }

    init(json: JSON, source: String) throws {
        func fail(_ what: String) -> BLError {
            BLError(.format, "not a blconvert eval output: \(what)", file: source)
        }
        guard let model = json["model"]?.stringValue, let fp = json["model_fingerprint"]?.stringValue,
              let list = json["list"], let lp = list["path"]?.stringValue, let sha = list["sha256"]?.stringValue,
              let sep = list["separator"]?.stringValue, let n = list["videos"]?.intValue,
              case .bool(let labelled)? = list["labelled"], let settings = json["settings"] else {
            throw fail("model, model_fingerprint, list or settings missing")
        }
        var shard = Shard.whole
        if let s = json["shard"], s != .null {
            guard let k = s["index"]?.intValue, let c = s["count"]?.intValue else { throw fail("bad shard") }
            shard = try Shard(checking: k, c, source: source)
        }
        self.init(model: model, fingerprint: fp, listPath: lp, listSHA256: sha, separator: sep, videos: n,
                  labelled: labelled, settings: settings, shard: shard)
    }

    /// Why `other` does not describe the same evaluation (shards aside), or nil.
    package func mismatch(_ other: EvalHeader) -> String? {
        if fingerprint != other.fingerprint { return "another model (fingerprint \(other.fingerprint.prefix(12)) vs \(fingerprint.prefix(12)))" }
        if listSHA256 != other.listSHA256 || separator != other.separator || videos != other.videos {
            return "another list (\(other.listPath), sha256 \(other.listSHA256.prefix(12)) vs \(listPath), \(listSHA256.prefix(12)))"
        }
        if settings != other.settings {
            return "other settings (\(other.settings.serialized()) vs \(settings.serialized()))"
        }
        return nil
    }
}

/// A finished evaluation (or shard): the results in list order and what test.py reports.
package struct EvalReport: Sendable {
    package var header: EvalHeader
    package var results: [VideoResult]

    package init(header: EvalHeader, results: [VideoResult]) {
        self.header = header
        self.results = results.sorted { $0.entry.index < $1.entry.index }
    }

    package var scored: Int { results.filter(\.scored).count }
    package var failed: Int { results.filter { $0.error != nil }.count }

    /// Percent of the labelled videos with a label among the top `k` (failed videos are misses);
    /// nil for a test list.
    package func accuracy(_ k: Int) -> Double? {
        let n = scored
        guard n > 0 else { return nil }
        return 100.0 * Double(results.filter { $0.scored && $0.hit(k) }.count) / Double(n)
    }

    /// `test.py`'s line: `Val@224(256) (# crops = 3, # clips = 2): \tTop@1: 50.0000\tTop@5: 100.0000\t`,
    /// or `Predict N videos.` for a test list.
    package var summaryLine: String {
        guard let t1 = accuracy(1), let t5 = accuracy(5) else { return "Predict \(results.count) videos." }
        let s = header.settings
        let shape = s["input_shape"]?.intValue ?? 0, scale = s["scale_size"]?.intValue ?? 0
        let crops = s["num_crops"]?.intValue ?? 0, clips = s["num_clips"]?.intValue ?? 0
        return "Val@\(shape)(\(scale)) (# crops = \(crops), # clips = \(clips)): \tTop@1: \(String(format: "%.4f", t1))\tTop@5: \(String(format: "%.4f", t5))\t"
    }

    /// The `--json` document.
    package var json: JSON {
        func num(_ d: Double?) -> JSON { d.map { .double($0) } ?? .null }
        var items = header.fields
        items += [("top1", num(accuracy(1))), ("top5", num(accuracy(5))),
                  ("videos_evaluated", .int(Int64(results.count - failed))),
                  ("videos_failed", .int(Int64(failed))),
                  ("videos", .array(results.map(Self.videoJSON)))]
        return .object(items)
    }

    static func labelJSON(_ labels: [Int]) -> JSON {
        switch labels.count {
        case 0: return .null
        case 1: return .int(Int64(labels[0]))
        default: return .array(labels.map { .int(Int64($0)) })
        }
    }

    static func videoJSON(_ r: VideoResult) -> JSON {
        var o: [(String, JSON)] = [("index", .int(Int64(r.entry.index))), ("line", .int(Int64(r.entry.line))),
                                   ("path", .string(r.entry.path)), ("label", labelJSON(r.entry.labels))]
        if let logits = r.logits, let probs = r.probs, let top5 = r.top5 {
            o += [("views", .int(Int64(r.views))), ("logits", .array(logits.map { .double($0) })),
                  ("probs", .array(probs.map { .double($0) })), ("top5", .array(top5.map { .int(Int64($0)) }))]
        } else {
            o.append(("error", .string(r.error ?? "failed")))
        }
        return .object(o)
    }

    /// `test.py`'s predictions file: `video_id;p1;p2;p3;p4;p5` per video (`int(basename)` as id;
    /// a failed video has -1 for each class).
    package var predictionsCSV: String {
        results.map { r in
            let top = r.top5.map { Array($0.prefix(5)) } ?? Array(repeating: -1, count: 5)
            return ([r.entry.videoID] + top.map(String.init)).joined(separator: ";")
        }.joined(separator: "\n") + (results.isEmpty ? "" : "\n")
    }

    /// `test.py`'s details file: the softmax outputs, `[videos, classes]` float64 holding the
    /// float32 values (torch's softmax runs in float32); NaN rows for failed videos.
    package func detailsNPY(classes: Int) -> [UInt8] {
        var values: [Double] = []
        values.reserveCapacity(results.count * classes)
        for r in results {
            if let p = r.probs, p.count == classes {
                values += p.map { Double(Float($0)) }
            } else {
                values += Array(repeating: .nan, count: classes)
            }
        }
        return NPYFile.float64(values, shape: [results.count, classes])
    }

    /// One result from its `--json` or results-file form.
    static func result(_ json: JSON, source: String) throws -> VideoResult {
        func fail(_ what: String) -> BLError { BLError(.format, "bad video record: \(what)", file: source) }
        guard let index = json["index"]?.intValue, let line = json["line"]?.intValue,
              let path = json["path"]?.stringValue else { throw fail("index, line or path missing") }
        var labels: [Int] = []
        switch json["label"] ?? .null {
        case .null: break
        case .array(let xs): labels = try xs.map { guard let v = $0.intValue else { throw fail("label") }; return v }
        case let v: guard let l = v.intValue else { throw fail("label") }; labels = [l]
        }
        let entry = VideoEntry(index: index, line: line, path: path, startFrame: 1, endFrame: 1, labels: labels)
        if let e = json["error"]?.stringValue { return VideoResult(entry: entry, error: e) }
        guard let xs = json["logits"]?.arrayValue, let views = json["views"]?.intValue else {
            throw fail("logits or views missing for \(path)")
        }
        let logits = try xs.map { x -> Double in
            guard let d = x.doubleValue else { throw fail("logit") }
            return d
        }
        return VideoResult(entry: entry, logits: logits, views: views)
    }
}

/// `.npy` writing (format 1.0, little-endian, C order).
package enum NPYFile {
    package static func float64(_ values: [Double], shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = UInt16(header.utf8.count)
        out += [UInt8(n & 0xff), UInt8(n >> 8)]
        out += Array(header.utf8)
        out.reserveCapacity(out.count + values.count * 8)
        for v in values {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }
}
