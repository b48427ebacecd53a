import Foundation
import Testing
import BLTestSupport
import BLCore
import BLSafetensors
@testable import BLCommands

/// `blconvert inspect` and `blconvert extract` on the parser fixtures, against expected.json.
@Suite struct ExtractTests {
    /// The tensor entries of one expected.json section: name -> (dtype, shape, values).
    static func section(_ name: String) throws -> [(name: String, dtype: String, shape: [Int], values: [JSON])] {
        let e = try CLIFixtures.expected()
        let items = try #require(e[name]?.objectValue, "expected.json has no section \(name)")
        return try items.map { key, v in
            (key, try #require(v["dtype"]?.stringValue), try #require(v["shape"]?.arrayValue).compactMap(\.intValue),
             try #require(v["values"]?.arrayValue))
        }
    }

    /// A value of expected.json as a double (bools as 0/1).
    static func number(_ j: JSON) -> Double? {
        if case .bool(let b) = j { return b ? 1 : 0 }
        return j.doubleValue
    }

    /// Which expected.json section describes each parser fixture, and the prefix its names get.
    static let cases: [(file: String, section: String, prefix: String)] = [
        ("tensors_zip.pth", "tensors", ""), ("tensors_legacy.pth", "tensors", ""),
        ("train_zip.pth.tar", "train", "state_dict."), ("train_legacy.pth.tar", "train", "state_dict."),
        ("tensors_flat.h5", "h5_flat", ""), ("tensors_nested.h5", "h5_nested", ""),
    ]

    // MARK: inspect

    @Test(arguments: cases)
    func inspectListsExpectedTensors(_ c: (file: String, section: String, prefix: String)) throws {
        let r = CLI.run(["inspect", CLIFixtures.parsers + "/" + c.file, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty)
        let j = try #require(r.json, "inspect --json printed no JSON: \(r.stdout.prefix(200))")
        let listed = try #require(j["tensors"] as? [[String: Any]])
        var byName: [String: [String: Any]] = [:]
        for t in listed { byName[t["name"] as? String ?? ""] = t }
        let expected = try Self.section(c.section)
        for e in expected {
            let t = try #require(byName[c.prefix + e.name], "\(c.file): no tensor \(c.prefix + e.name)")
            #expect(t["dtype"] as? String == e.dtype, "\(c.file) \(e.name)")
            #expect((t["shape"] as? [Int]) == e.shape, "\(c.file) \(e.name)")
            let size = try #require(DType(torchName: e.dtype)).byteSize
            #expect(t["bytes"] as? Int == e.shape.reduce(1, *) * size, "\(c.file) \(e.name)")
        }
        let totals = try #require(j["totals"] as? [String: Any])
        let format = j["format"] as? String
        switch c.section {
        case "train":
            // The state dict plus best_top1 and one momentum buffer per parameter (shaped like it).
            let params = expected.filter { !$0.name.contains("running_") && !$0.name.hasSuffix("num_batches_tracked") }
            #expect(byName["best_top1"]?["shape"] as? [Int] == [])
            for (i, p) in params.enumerated() {
                #expect(byName["optimizer.state.\(i).momentum_buffer"]?["shape"] as? [Int] == p.shape, "\(p.name)")
            }
            #expect(listed.count == expected.count + 1 + params.count)
            let entries = try #require(j["entries"] as? [[String: Any]])
            #expect(Set(entries.compactMap { $0["name"] as? String }) == ["epoch", "arch", "optimizer.param_groups"])
        default:
            #expect(listed.count == expected.count, "\(c.file): \(listed.count) tensors")
            #expect(totals["tensor_elements"] as? Int == expected.reduce(0) { $0 + $1.shape.reduce(1, *) })
            #expect(totals["tensor_bytes"] as? Int == expected.reduce(0) {
                $0 + $1.shape.reduce(1, *) * (DType(torchName: $1.dtype)?.byteSize ?? 0)
            })
        }
        #expect(totals["tensor_count"] as? Int == listed.count)
        #expect(format == (c.file.hasSuffix(".h5") ? "hdf5" : c.file.contains("zip") ? "pytorch-zip" : "pytorch-legacy"))
    }

    @Test func inspectClipSafetensorsMatchesTheFile() throws {
        let path = CLIFixtures.miniClips[0]
        let r = CLI.run(["inspect", path, "--json"])
        #expect(r.status == 0)
        let j = try #require(r.json)
        #expect(j["format"] as? String == "safetensors")
        let listed = try #require(j["tensors"] as? [[String: Any]])
        let file = try SafetensorsFile.load(path: path)
        #expect(listed.count == file.tensors.count)
        for t in file.tensors {
            let l = try #require(listed.first { $0["name"] as? String == t.name }, "\(t.name)")
            #expect(l["dtype"] as? String == t.tensor.dtype.torchName)
            #expect(l["shape"] as? [Int] == t.tensor.shape)
        }
        let totals = try #require(j["totals"] as? [String: Any])
        #expect(totals["tensor_elements"] as? Int == file.tensors.reduce(0) { $0 + $1.tensor.elementCount })
    }

    /// The format comes from the bytes: a zip checkpoint named x.h5 is still a PyTorch zip, and so on.
    @Test func formatIsDetectedFromBytesNotName() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases = [("tensors_zip.pth", "x.h5", "pytorch-zip"), ("tensors_legacy.pth", "y.safetensors", "pytorch-legacy"),
                     ("tensors_flat.h5", "z.pth", "hdf5")]
        for (source, name, format) in cases {
            try FileManager.default.copyItem(atPath: CLIFixtures.parsers + "/" + source, toPath: dir + "/" + name)
            let r = CLI.run(["inspect", dir + "/" + name, "--json"])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            #expect(r.json?["format"] as? String == format, "\(name)")
        }
        // Tensor data holding the HDF5 signature at byte 512 (where a user block would end) is
        // still read as safetensors.
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
        let raw = try Tensor.make(dtype: .uint8, shape: [1024]) { p in
            for i in 0..<1024 { p[i] = signature[i % 8] }
        }
        try writeSafetensors([(name: "bytes", tensor: raw)], to: dir + "/sig.safetensors")
        let sig = try Data(contentsOf: URL(fileURLWithPath: dir + "/sig.safetensors"))
        #expect(Array(sig[512..<520]) == signature)
        let detected = CLI.run(["inspect", dir + "/sig.safetensors", "--json"])
        #expect(detected.status == 0 && detected.json?["format"] as? String == "safetensors", "\(detected.stderr)")

        let clip = dir + "/clip.pth"
        try FileManager.default.copyItem(atPath: CLIFixtures.miniClips[1], toPath: clip)
        #expect(CLI.run(["inspect", clip, "--json"]).json?["format"] as? String == "safetensors")
    }

    // MARK: extract

    /// Every fixture to safetensors, read back: every value equals expected.json, and the
    /// non-tensor entries are in __metadata__ as JSON text.
    @Test(arguments: cases)
    func extractPreservesEveryValue(_ c: (file: String, section: String, prefix: String)) throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.safetensors"
        let r = CLI.run(["extract", CLIFixtures.parsers + "/" + c.file, "-o", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let st = try SafetensorsFile.load(path: out)
        #expect(r.json?["tensor_count"] as? Int == st.tensors.count)
        for e in try Self.section(c.section) {
            let t = try #require(st.tensor(c.prefix + e.name), "\(c.file): \(c.prefix + e.name) missing")
            #expect(t.dtype.torchName == e.dtype, "\(e.name)")
            #expect(t.shape == e.shape, "\(e.name)")
            let want = e.values.compactMap(Self.number)
            #expect(want.count == e.values.count)
            if t.dtype == .int64 {
                #expect(t.int64s() == e.values.compactMap { $0.intValue.map(Int64.init) }, "\(e.name)")
            } else {
                #expect(t.doubles() == want, "\(c.file) \(e.name)")
            }
        }
        let meta = Dictionary(st.metadata, uniquingKeysWith: { a, _ in a })
        #expect(meta["blconvert.source"] == c.file)
        #expect(meta["blconvert.format"] == (c.file.hasSuffix(".h5") ? "hdf5" : c.file.contains("zip") ? "pytorch-zip" : "pytorch-legacy"))
        switch c.section {
        case "tensors":
            // The pickle's top level is one flat dict: the tensors, the plain values (expected.json
            // 'extras'), and nested -> a -> b -> (tensor,) named nested.a.b.0.
            let extras = try #require(try CLIFixtures.expected()["extras"]?.objectValue)
            for (key, value) in extras {
                let text = try #require(meta[key], "\(c.file): metadata \(key) missing")
                #expect(try JSONParser.parse(text) == value, "\(key): \(text)")
            }
            #expect(Set(meta.keys) == Set(extras.map(\.0) + ["blconvert.source", "blconvert.format"]))
            #expect(Set(st.tensors.map(\.name)) == Set(try Self.section("tensors").map(\.name)))
        case "train":
            #expect(meta["epoch"] == "3" && meta["arch"] == "\"toy\"")
            let groups = try JSONParser.parse(try #require(meta["optimizer.param_groups"]))
            #expect(groups.arrayValue?.first?["momentum"]?.doubleValue == 0.9)
        case "h5_flat":
            #expect(meta["attr.framework"] == "\"pytorch\"")
            #expect(meta["blconvert.skipped.notes"] != nil)
        default:
            break
        }
    }

    /// A failed extract (truncated input) leaves no output and no temporary file.
    @Test func failedExtractLeavesNothing() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: CLIFixtures.parsers + "/tensors_legacy.pth"))
        try bytes.prefix(bytes.count - 40).write(to: URL(fileURLWithPath: dir + "/cut.pth"))
        let r = CLI.run(["extract", dir + "/cut.pth", "-o", dir + "/out.safetensors"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("cut.pth"))
        #expect(r.stdout.isEmpty)
        #expect(listing(dir) == ["cut.pth"])
    }
    /// An existing output is replaced only with --force, and never when it is a directory.
    @Test func existingOutputNeedsForce() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.safetensors"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out))
        let input = CLIFixtures.parsers + "/tensors_zip.pth"
        let refused = CLI.run(["extract", input, "-o", out])
        #expect(refused.status == 2 && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep me")
        let forced = CLI.run(["extract", input, "-o", out, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try SafetensorsFile.load(path: out).tensors.count > 0)
        try FileManager.default.createDirectory(atPath: dir + "/d", withIntermediateDirectories: false)
        let directory = CLI.run(["extract", input, "-o", dir + "/d", "--force"])
        #expect(directory.status == 2 && directory.stderr.contains("directory"), "\(directory.stderr)")
        #expect(listing(dir).sorted() == ["d", "out.safetensors"])
    }

    /// The output spelled differently from the input but naming the same file is refused, and the
    /// input is left as it was.
    @Test func outputThatIsTheInputIsRefused() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/t.pth"
        try FileManager.default.copyItem(atPath: CLIFixtures.parsers + "/tensors_zip.pth", toPath: input)
        let before = try sha256(input)
        let r = CLI.run(["extract", input, "-o", dir + "/./t.pth"])
        #expect(r.status == 2 && r.stderr.contains("would be overwritten"), "\(r.stderr)")
        #expect(try sha256(input) == before)
        #expect(listing(dir) == ["t.pth"])
    }

    /// Non-finite numbers in a checkpoint (a training loss of inf) still give strict JSON.
    @Test func nonFiniteEntriesGiveStrictJSON() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Protocol 2: {"loss": inf, "nan": nan, "ok": 1.5}
        var bytes: [UInt8] = [0x80, 0x02, 0x7d, 0x28]
        for (key, value) in [("loss", Double.infinity), ("nan", Double.nan), ("ok", 1.5)] {
            bytes += [0x58] + withUnsafeBytes(of: UInt32(key.utf8.count).littleEndian, Array.init) + Array(key.utf8)
            bytes += [0x47] + withUnsafeBytes(of: value.bitPattern.bigEndian, Array.init)
        }
        bytes += [0x75, 0x2e]
        let path = dir + "/loss.pkl"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = CLI.run(["inspect", path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let entries = try #require(r.json?["entries"] as? [[String: Any]], "not strict JSON: \(r.stdout)")
        let values = Dictionary(uniqueKeysWithValues: entries.map { ($0["name"] as? String ?? "", $0["value"]) })
        #expect(values["loss"] as? String == "Infinity")
        #expect(values["nan"] as? String == "NaN")
        #expect(values["ok"] as? Double == 1.5)
    }
}
