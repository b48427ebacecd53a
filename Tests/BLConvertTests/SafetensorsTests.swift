import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLSafetensors

@Suite struct SafetensorsTests {
    // MARK: reference files

    /// Every clip of every case folder: dtypes and shapes as the manifest says, and values that agree
    /// with the manifest's measured float32-vs-float64 error and top-1 classes.
    @Test func readsReferenceClips() throws {
        var cases: [String] = []
        if let root = TestData.sharedIfPresent("") {
            for c in ["mini-a2b4-f4x2", "mini-a4b2-f3x2-blend5-fc", "r50-a2b4-f8x2-ssv2"] { cases.append(root + c) }
        }
        cases.append(TestData.fixture("mini-a2b4-f4x2"))
        var clipsRead = 0
        for dir in cases {
            let manifest = try JSONParser.parse(Array(FileManager.default.contents(atPath: dir + "/manifest.json") ?? Data()))
            let frames = try #require(manifest["config"]?["frames"]?.intValue)
            let classes = try #require(manifest["config"]?["num_classes"]?.intValue)
            let channels = try #require(manifest["config"]?["input_channels"]?.intValue)
            for clip in try #require(manifest["clips"]?.arrayValue) {
                let name = try #require(clip["file"]?.stringValue)
                let shape = try #require(clip["shape"]?.arrayValue).compactMap(\.intValue)
                let f = try SafetensorsFile.load(path: dir + "/" + name)
                let n = shape[0]
                #expect(shape[1] == frames * channels)
                let input = try #require(f.tensor("input"))
                #expect(input.dtype == .float32 && input.shape == shape)
                let logits = try #require(f.tensor("logits"))
                let logits64 = try #require(f.tensor("logits_f64"))
                #expect(logits.dtype == .float32 && logits.shape == [n, classes])
                #expect(logits64.dtype == .float64 && logits64.shape == [n, classes])
                #expect(f.metadata.map(\.0) == ["source"])
                // Slices of the mapping, not copies.
                let base = UnsafeRawPointer(f.file.bytes.baseAddress!)
                #expect(input.storage.bytes.baseAddress! >= base
                        && input.storage.bytes.baseAddress! < base + f.file.count)

                let a = logits.doubles(), b = logits64.doubles()
                let maxAbs = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                let expectedMax = try #require(clip["torch_fp32_vs_fp64_max_abs"]?.doubleValue)
                #expect(abs(maxAbs - expectedMax) <= 1e-12 + expectedMax * 1e-6, "\(dir)/\(name)")
                let top1 = (0..<n).map { i in
                    (0..<classes).max { b[i * classes + $0] < b[i * classes + $1] } ?? -1
                }
                #expect(top1 == (clip["top1"]?.arrayValue ?? []).compactMap(\.intValue), "\(dir)/\(name)")

                for (tname, t) in f.tensors where tname.hasPrefix("act.") {
                    #expect(t.dtype == .float32)
                    #expect(t.shape.first == n * frames || t.shape.first == n * frames / 2, "\(tname) \(t.shape)")
                }
                // Data-offset order: the tensors tile the buffer in the order given.
                var expectedStart = 8 + Int(f.file.bytes.loadUnaligned(as: UInt64.self))
                for (_, t) in f.tensors {
                    #expect(t.storage.bytes.baseAddress! == base + expectedStart)
                    expectedStart += t.byteCount
                }
                #expect(expectedStart == f.file.count)
                clipsRead += 1
            }
        }
        #expect(clipsRead >= 3)
    }

    @Test(.enabled(if: TestData.hasShared)) func readsPreprocessedFrames() throws {
        let path = TestData.shared("frames-mini/preprocessed.safetensors")
        let f = try SafetensorsFile.load(path: path)
        let indices = try #require(f.tensor("indices"))
        #expect(indices.dtype == .int64 && indices.shape == [8])
        // The README's sampled frame numbers for 37 frames, T = 8.
        #expect(indices.int64s() == [3, 7, 12, 17, 21, 26, 31, 35])
        for name in ["input_png_scale224", "input_png_scale256", "input_jpg_scale224"] {
            let t = try #require(f.tensor(name))
            #expect(t.dtype == .float32 && t.shape == [1, 24, 224, 224])
        }
        for s in ["224", "256"] {
            #expect(f.tensor("logits_png_scale" + s)?.shape == [1, 10])
            #expect(f.tensor("logits_f64_png_scale" + s)?.dtype == .float64)
        }
        #expect(f.metadata.isEmpty)
    }

    /// Re-writing a file produced by the Python library gives the same bytes: same layout order,
    /// header text, padding and offsets.
    @Test func writerReproducesReferenceFilesByteForByte() throws {
        var paths = [TestData.fixture("mini-a2b4-f4x2/clip0.safetensors")]
        if let p = TestData.sharedIfPresent("frames-mini/preprocessed.safetensors") { paths.append(p) }
        if let p = TestData.sharedIfPresent("mini-a4b2-f3x2-blend5-fc/clip0.safetensors") { paths.append(p) }
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for path in paths {
            let f = try SafetensorsFile.load(path: path)
            let out = dir + "/copy.safetensors"
            // Shuffled input order must not matter.
            try SafetensorsWriter.write(f.tensors.reversed(), metadata: f.metadata, to: out)
            let original = try #require(FileManager.default.contents(atPath: path))
            let copy = try #require(FileManager.default.contents(atPath: out))
            #expect(original == copy, "\(path)")
        }
    }

    /// The reference implementation's own serialization test vector.
    @Test func writerMatchesReferenceTestVector() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try Tensor.fromFloats([0, 1, 2, 3, 4, 5], shape: [1, 2, 3])
        try SafetensorsWriter.write([("attn.0", t)], to: dir + "/a.safetensors")
        let bytes = try #require(FileManager.default.contents(atPath: dir + "/a.safetensors"))
        let header = #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#
        #expect(Array(bytes.prefix(8)) == [64, 0, 0, 0, 0, 0, 0, 0])
        #expect(String(decoding: bytes[8..<72], as: UTF8.self) == header)
        #expect(Array(bytes[72...]) == [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64])

        try SafetensorsWriter.write([], metadata: [("framework", "pt")], to: dir + "/b.safetensors")
        let b = try #require(FileManager.default.contents(atPath: dir + "/b.safetensors"))
        #expect(String(decoding: b[8...], as: UTF8.self) == #"{"__metadata__":{"framework":"pt"}}     "#)
        try SafetensorsWriter.write([], to: dir + "/c.safetensors")
        let c = try #require(FileManager.default.contents(atPath: dir + "/c.safetensors"))
        #expect(Array(c) == [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
    }

    // MARK: round trip

    static func sampleTensors() throws -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        for (i, d) in DType.allCases.enumerated() {
            let t = try Tensor.make(dtype: d, shape: [2, 3]) { dst in
                for k in 0..<dst.count { dst[k] = d == .bool ? UInt8(k % 2) : UInt8(truncatingIfNeeded: k * 37 + i) }
            }
            out.append(("dense.\(d.rawValue)", t))
            // Transposed view [3, 2] of the same storage.
            out.append(("transposed.\(d.rawValue)", try Tensor(dtype: d, shape: [3, 2], strides: [1, 3], storage: t.storage)))
        }
        let base = try Tensor.fromFloats((0..<24).map(Float.init), shape: [24])
        out.append(("stride3", try Tensor(dtype: .float32, shape: [4], strides: [3], offset: 2, storage: base.storage)))
        out.append(("expanded", try Tensor(dtype: .float32, shape: [3, 4], strides: [0, 1], offset: 5, storage: base.storage)))
        out.append(("scalar", try Tensor(dtype: .float64, shape: [], storage: ByteStorage(copying: withUnsafeBytes(of: 2.5) { Array($0) }))))
        out.append(("empty", try Tensor.make(dtype: .float32, shape: [0, 7]) { _ in }))
        out.append(("empty.i64", try Tensor.make(dtype: .int64, shape: [3, 0]) { _ in }))
        out.append(("ünïcode \"quoted\"\n", try Tensor.fromFloats([1], shape: [1, 1])))
        // Canonically equivalent but different bytes: two names, as in the reference.
        out.append(("caf\u{e9}", try Tensor.fromFloats([2], shape: [1])))
        out.append(("cafe\u{301}", try Tensor.fromFloats([3], shape: [1])))
        return out
    }

    @Test func roundTripEveryDTypeAndView() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tensors = try Self.sampleTensors()
        let metadata = [("format", "pt"), ("note", "zeta \u{1} \"x\""), ("a", "")]
        let path = dir + "/rt.safetensors"
        try SafetensorsWriter.write(tensors, metadata: metadata, to: path)
        let f = try SafetensorsFile.load(path: path)
        #expect(f.tensors.count == tensors.count)
        #expect(f.metadata.map(\.0) == metadata.map(\.0) && f.metadata.map(\.1) == metadata.map(\.1))
        for (name, t) in tensors {
            let r = try #require(f.tensor(name), "\(name)")
            #expect(r.dtype == t.dtype && r.shape == t.shape, "\(name)")
            #expect(r.contiguousBytes() == t.contiguousBytes(), "\(name)")
            if r.elementCount > 0 { #expect(r.isContiguous, "\(name)") }
        }
        #expect(f.tensor("expanded")?.floats() == [5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7, 8])
        #expect(f.tensor("stride3")?.floats() == [2, 5, 8, 11])
        #expect(f.tensor("scalar")?.doubles() == [2.5])
        #expect(f.tensor("caf\u{e9}")?.floats() == [2] && f.tensor("cafe\u{301}")?.floats() == [3])
        // Layout: descending alignment, then name; every tensor 8-byte aligned in the file... for 8-byte dtypes.
        let dtypesInOrder = f.tensors.map { SafetensorsWriter.alignmentRank($0.tensor.dtype) }
        #expect(dtypesInOrder == dtypesInOrder.sorted(by: >))
        let headerLength = Int(f.file.bytes.loadUnaligned(as: UInt64.self))
        #expect(headerLength % 8 == 0)
        // Writing the read-back file again gives identical bytes.
        try SafetensorsWriter.write(f.tensors, metadata: f.metadata, to: dir + "/rt2.safetensors")
        #expect(FileManager.default.contents(atPath: path) == FileManager.default.contents(atPath: dir + "/rt2.safetensors"))
        // No temporary file left beside the output.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["rt.safetensors", "rt2.safetensors"])
    }

    // MARK: hostile input

    static func load(_ bytes: [UInt8], in dir: String) throws -> SafetensorsFile {
        let path = dir + "/hostile.safetensors"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return try SafetensorsFile.load(path: path)
    }

    static func file(header: String, data: [UInt8], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { Array($0) } + h + data
    }

    /// Loads and expects a BLError of `kind` whose text mentions every string in `mentions`.
    static func expectError(_ bytes: [UInt8], in dir: String, _ kind: BLError.Kind = .format, mentions: [String] = [],
                            sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try load(bytes, in: dir)
            Issue.record("expected a \(kind) error", sourceLocation: sourceLocation)
        } catch let e as BLError {
            #expect(e.kind == kind, "\(e)", sourceLocation: sourceLocation)
            #expect(e.file?.hasSuffix("hostile.safetensors") == true, sourceLocation: sourceLocation)
            for m in mentions { #expect(e.description.contains(m), "\(e) should mention \(m)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("non-BLError \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func truncatedAndFlippedFilesFailCleanly() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let small = [("w", try Tensor.fromFloats([1, 2, 3, 4], shape: [2, 2])),
                     ("b", try Tensor.make(dtype: .int64, shape: [3]) { _ in }),
                     ("m", try Tensor.make(dtype: .bool, shape: [5]) { _ in })]
        try SafetensorsWriter.write(small, metadata: [("k", "v")], to: dir + "/good.safetensors")
        let good = [UInt8](try #require(FileManager.default.contents(atPath: dir + "/good.safetensors")))
        #expect(try Self.load(good, in: dir).tensors.count == 3)
        for cut in 0..<good.count {
            #expect(throws: BLError.self) { try Self.load(Array(good[..<cut]), in: dir) }
        }
        // Extra bytes after the last tensor are not covered by any offsets.
        Self.expectError(good + [0], in: dir, mentions: ["cover"])
        var loaded = 0, rejected = 0
        for i in 0..<good.count {
            for mask: UInt8 in [0xff, 0x01, 0x80] {
                var b = good
                b[i] ^= mask
                do { _ = try Self.load(b, in: dir); loaded += 1 }
                catch is BLError { rejected += 1 }
                catch { Issue.record("non-BLError \(error) at byte \(i)") }
            }
        }
        #expect(rejected > 0 && loaded > 0)
    }

    @Test func malformedHeadersFailCleanly() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let z16 = [UInt8](repeating: 0, count: 16)
        func t(_ name: String, _ dtype: String, _ shape: String, _ b: String, _ e: String) -> String {
            "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(b),\(e)]}"
        }
        // Valid baseline.
        #expect(try Self.load(Self.file(header: "{\(t("a", "F32", "[2]", "0", "8")),\(t("b", "I32", "[2]", "8", "16"))}", data: z16), in: dir).tensors.count == 2)
        // Offsets listed out of order are fine when they tile.
        #expect(try Self.load(Self.file(header: "{\(t("b", "I32", "[2]", "8", "16")),\(t("a", "F32", "[2]", "0", "8"))}", data: z16), in: dir).tensors.map(\.name) == ["a", "b"])

        Self.expectError([1, 2, 3], in: dir, mentions: ["too small"])
        Self.expectError(Self.file(header: "{}", data: [], length: 1 << 63), in: dir, mentions: ["limit"])
        Self.expectError(Self.file(header: "{}", data: [], length: 100_000_001), in: dir, mentions: ["limit"])
        Self.expectError(Self.file(header: "{}", data: [], length: 3), in: dir, mentions: ["past the end"])
        Self.expectError(Self.file(header: "{\"a\":", data: []), in: dir, mentions: ["JSON"])
        Self.expectError(Self.file(header: "[1,2]", data: []), in: dir, mentions: ["object"])
        Self.expectError([2, 0, 0, 0, 0, 0, 0, 0, 0x22, 0xff], in: dir, mentions: ["JSON"])
        Self.expectError(Self.file(header: "{\"__metadata__\":{\"k\":1}}", data: []), in: dir, mentions: ["__metadata__", "k"])
        Self.expectError(Self.file(header: "{\"__metadata__\":[\"k\"]}", data: []), in: dir, mentions: ["__metadata__"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[2]", "0", "8")),\(t("a", "F32", "[2]", "8", "16"))}", data: z16), in: dir, mentions: ["duplicate", "'a'"])
        // Overlap, gap, reversed, past the end, size mismatch.
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[2]", "0", "8")),\(t("b", "F32", "[2]", "4", "12"))}", data: z16), in: dir, mentions: ["overlap", "'b'"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[1]", "0", "4")),\(t("b", "F32", "[2]", "8", "16"))}", data: z16), in: dir, mentions: ["gap", "'b'", "expected begin 4"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[0]", "16", "0"))}", data: z16), in: dir, mentions: ["gap"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[2]", "0", "8")),\(t("b", "F32", "[0]", "8", "0"))}", data: Array(z16[..<8])), in: dir, mentions: ["end before", "'b'"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[8]", "0", "32"))}", data: z16), in: dir, mentions: ["past the data buffer", "'a'"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[3]", "0", "16"))}", data: z16), in: dir, mentions: ["needs 12 bytes", "hold 16", "'a'"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[2]", "0", "8"))}", data: z16), in: dir, mentions: ["cover 8 bytes of the 16"])
        // Overflowing shapes and offsets.
        Self.expectError(Self.file(header: "{\(t("a", "F64", "[4611686018427387904,4]", "0", "16"))}", data: z16), in: dir, mentions: ["overflows", "'a'"])
        Self.expectError(Self.file(header: "{\(t("a", "F64", "[1152921504606846976]", "0", "16"))}", data: z16), in: dir, mentions: ["too large"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[4]", "0", "99999999999999999999999"))}", data: z16), in: dir, mentions: ["data_offsets"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[4]", "0", "9223372036854775807"))}", data: z16), in: dir, mentions: ["past the data buffer"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[-4]", "0", "16"))}", data: z16), in: dir, mentions: ["negative"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[0,4611686018427387904,4]", "0", "0"))}", data: []), in: dir, mentions: ["too large", "'a'"])
        Self.expectError(Self.file(header: "{\(t("a", "F32", "[4.0]", "0", "16"))}", data: z16), in: dir, mentions: ["shape"])
        Self.expectError(Self.file(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", data: z16), in: dir, mentions: ["data_offsets"])
        Self.expectError(Self.file(header: "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", data: z16), in: dir, mentions: ["dtype"])
        Self.expectError(Self.file(header: "{\"a\":7}", data: []), in: dir, mentions: ["'a'"])
        // Dtypes: unknown is a format error, valid-but-unhandled is unsupported and names the tensor.
        Self.expectError(Self.file(header: "{\(t("a", "F31", "[4]", "0", "16"))}", data: z16), in: dir, mentions: ["unknown dtype", "F31"])
        Self.expectError(Self.file(header: "{\(t("a", "U16", "[8]", "0", "16"))}", data: z16), in: dir, .unsupported, mentions: ["U16", "'a'"])
        Self.expectError(Self.file(header: "{\(t("x.y", "F8_E4M3", "[16]", "0", "16"))}", data: z16), in: dir, .unsupported, mentions: ["F8_E4M3", "'x.y'"])
        // Deep nesting is refused by the parser, not the stack.
        Self.expectError(Self.file(header: String(repeating: "[", count: 100_000), data: []), in: dir, mentions: ["JSON"])
    }

    @Test func sniffing() {
        let good = Self.file(header: "{}      ", data: [])
        good.withUnsafeBytes { #expect(SafetensorsFile.looksLikeSafetensors($0)) }
        Self.file(header: "[]", data: []).withUnsafeBytes { #expect(!SafetensorsFile.looksLikeSafetensors($0)) }
        Self.file(header: "{}", data: [], length: 1 << 40).withUnsafeBytes { #expect(!SafetensorsFile.looksLikeSafetensors($0)) }
        [UInt8]("PK\u{3}\u{4}".utf8).withUnsafeBytes { #expect(!SafetensorsFile.looksLikeSafetensors($0)) }
    }

    // MARK: atomic writes

    @Test func failedWritesLeaveNothingBehind() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try Tensor.fromFloats([1, 2], shape: [2])

        // Destination directory missing, or a path under a regular file.
        #expect(throws: BLError.self) { try SafetensorsWriter.write([("t", t)], to: dir + "/missing/x.safetensors") }
        _ = FileManager.default.createFile(atPath: dir + "/plain", contents: Data())
        #expect(throws: BLError.self) { try SafetensorsWriter.write([("t", t)], to: dir + "/plain/x.safetensors") }

        // An unwritable directory (permissions do not stop root, so only checked when they apply).
        let ro = dir + "/readonly"
        try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: ro)
        if access(ro, W_OK) != 0 {
            #expect(throws: BLError.self) { try SafetensorsWriter.write([("t", t)], to: ro + "/x.safetensors") }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: ro).isEmpty)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: ro)

        // A failure at the very end (the rename onto a directory) after all data was written.
        try FileManager.default.createDirectory(atPath: dir + "/target.safetensors", withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: dir + "/target.safetensors/keep", contents: Data())
        #expect(throws: BLError.self) { try SafetensorsWriter.write([("t", t)], to: dir + "/target.safetensors") }

        // An invalid request leaves an existing file untouched.
        try SafetensorsWriter.write([("t", t)], to: dir + "/existing.safetensors")
        let before = FileManager.default.contents(atPath: dir + "/existing.safetensors")
        #expect(throws: BLError.self) { try SafetensorsWriter.write([("t", t), ("t", t)], to: dir + "/existing.safetensors") }
        #expect(throws: BLError.self) { try SafetensorsWriter.write([("__metadata__", t)], to: dir + "/existing.safetensors") }
        #expect(throws: BLError.self) { try SafetensorsWriter.write([("t", t)], metadata: [("k", "1"), ("k", "2")], to: dir + "/existing.safetensors") }
        #expect(FileManager.default.contents(atPath: dir + "/existing.safetensors") == before)

        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
                == ["existing.safetensors", "plain", "readonly", "target.safetensors"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/target.safetensors") == ["keep"])
    }
}
