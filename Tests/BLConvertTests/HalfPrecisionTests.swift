import Foundation
import Testing
import BLTestSupport
import BLCore
import BLSafetensors
import BLVNet
@testable import BLCommands

// Half-precision packages (`import --dtype f16|bf16`): the logits error they reach against the
// reference float64 logits, per model case, dtype and graph (BatchNorm folded or not).
//
// Bounds are about twice the maximum relative error measured on every clip of the case (convolution
// and linear weights rounded, vectors float32). The fixtures' weights are exactly representable in
// bfloat16, so without folding only `new_fc.weight` (and, for float16, weights below its normal
// range) is rounded; folding scales each convolution by gamma / sqrt(var + eps), which no longer is,
// hence the larger optimized errors. Every sample keeps its float64 top-1 class.

/// One measured configuration: the case, the dtype, whether BatchNorm is folded, the bound.
struct HalfPrecisionCase: Sendable, CustomTestStringConvertible {
    var model: String
    var dtype: String
    var optimized: Bool
    /// Measured maximum relative error (verify's `max_rel_error`) times ~2.
    var bound: Double

    var testDescription: String { "\(model) \(dtype)\(optimized ? "" : " --no-optimize") <= \(bound)" }
}

@Suite struct HalfPrecisionCLITests {
    /// Measured: mini f16 2.6e-3 / 3.5e-4 (no-optimize), bf16 1.6e-2 / 3.0e-3.
    /// (Before vectors stayed float32: f16 2.3e-3 / 7.7e-4, bf16 1.4e-2 / 5.3e-3.)
    static let mini = [
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "f16", optimized: true, bound: 5.5e-3),
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "f16", optimized: false, bound: 7e-4),
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "bf16", optimized: true, bound: 3.5e-2),
        HalfPrecisionCase(model: "mini-a2b4-f4x2", dtype: "bf16", optimized: false, bound: 6e-3),
    ]

    /// Shared cases. Measured: blend5 f16 5.9e-3 / 1.0e-3, bf16 4.3e-2 / 1.4e-2;
    /// r50 f16 1.1e-3 / 3.1e-4, bf16 7.2e-3 / 2.1e-3 (optimized / no-optimize).
    static let shared = [
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "f16", optimized: true, bound: 1.2e-2),
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "f16", optimized: false, bound: 2e-3),
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "bf16", optimized: true, bound: 8.5e-2),
        HalfPrecisionCase(model: "mini-a4b2-f3x2-blend5-fc", dtype: "bf16", optimized: false, bound: 3e-2),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "f16", optimized: true, bound: 2.2e-3),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "f16", optimized: false, bound: 6.5e-4),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "bf16", optimized: true, bound: 1.5e-2),
        HalfPrecisionCase(model: "r50-a2b4-f8x2-ssv2", dtype: "bf16", optimized: false, bound: 4.2e-3),
    ]

    /// The bundled mini case: fails the float32 tolerance, passes `--rtol bound`, top-1 kept.
    @Test(arguments: mini)
    func miniCaseError(_ c: HalfPrecisionCase) throws {
        let pkg = try CLIFixtures.miniPackage("\(c.dtype)\(c.optimized ? "" : "-noopt")",
                                              ["--dtype", c.dtype] + (c.optimized ? [] : ["--no-optimize"]))
        try checkError(pkg, clips: CLIFixtures.miniClips, c)
    }

    /// The shared blend5 and R50 cases (skipped when the shared fixtures are absent).
    @Test(.enabled(if: TestData.hasShared), arguments: shared)
    func sharedCaseError(_ c: HalfPrecisionCase) throws {
        let dir = TestData.shared(c.model)
        let manifest = try CLIFixtures.readJSON(dir + "/manifest.json")
        let frames = try #require(manifest["config"]?["frames"]?.intValue)
        let checkpoint = dir + "/" + (try #require(manifest["checkpoints"]?.objectValue?.first?.1.stringValue))
        let clips = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasPrefix("clip") && $0.hasSuffix(".safetensors") }.sorted().map { dir + "/" + $0 }
        #expect(!clips.isEmpty)
        let work = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let pkg = work + "/m.blc"
        let r = CLI.run(["import", checkpoint, "-o", pkg, "--frames", String(frames), "--dtype", c.dtype]
                        + (c.optimized ? [] : ["--no-optimize"]))
        #expect(r.status == 0, "\(r.stderr)")
        try checkError(pkg, clips: clips, c)
    }

    private func checkError(_ pkg: String, clips: [String], _ c: HalfPrecisionCase) throws {
        let strict = CLI.run(["verify", pkg] + clips + ["--json"])
        #expect(strict.status == 1, "\(c.testDescription): passes the float32 tolerance")
        let reported = try #require(strict.json?["clips"] as? [[String: Any]])
        #expect(reported.count == clips.count)
        var worst = 0.0
        for clip in reported {
            worst = max(worst, try #require(clip["max_rel_error"] as? Double))
            let samples = try #require(clip["samples"] as? [[String: Any]])
            #expect(!samples.isEmpty)
            for s in samples { #expect(s["top1_agree"] as? Bool == true, "\(c.testDescription)") }
        }
        #expect(worst <= c.bound && worst > 1e-5, "\(c.testDescription): worst relative error \(worst)")
        let loose = CLI.run(["verify", pkg] + clips + ["--rtol", String(c.bound)])
        #expect(loose.status == 0, "\(loose.stdout)")
    }
}

@Suite struct ModelPackageHalfPrecisionTests {
    /// Float32 values covering round-to-nearest-even ties, subnormal and overflowing halves, signed
    /// zeros, infinities and NaN, plus pseudo-random values.
    static func awkwardFloats() -> [Float] {
        var v: [Float] = [0, -0, 1, -1, 65504, 65520, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 1e-10,
                          .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                          Float(bitPattern: 0x3f80_1000), Float(bitPattern: 0x3f80_3000),  // half ties
                          Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000)]  // bfloat16 ties
        var x: UInt32 = 12345
        for _ in 0..<1000 {
            x = x &* 1_664_525 &+ 1_013_904_223
            v.append(Float(bitPattern: (x & 0x807f_ffff) | (UInt32(100 + x % 56) << 23)))
        }
        return v
    }

    static func reference(_ f: Float, _ d: DType) -> UInt16 {
        d == .float16 ? HalfConversion.floatToHalf(f) : HalfConversion.floatToBFloat16(f)
    }

    static func bits(_ t: Tensor) -> [UInt16] {
        t.withContiguousBytes { raw in (0..<t.elementCount).map { raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) } }
    }

    /// The direct float32 path (contiguous, at an odd element offset inside a shared storage) and
    /// the element-wise path (a transposed view, a float64 source) give `HalfConversion`'s bits.
    @Test(arguments: [DType.float16, .bfloat16])
    func conversionMatchesHalfConversion(_ d: DType) throws {
        let values = Self.awkwardFloats()
        let n = values.count
        let storage = try Tensor.fromFloats([7] + values, shape: [n + 1]).storage
        let view = try Tensor(dtype: .float32, shape: [n], offset: 1, storage: storage)
        let direct = try view.converted(to: d)
        #expect(direct.dtype == d && direct.shape == [n] && direct.isContiguous)
        #expect(Self.bits(direct) == values.map { Self.reference($0, d) })

        let rows = 2, cols = n / 2
        let m = try Tensor.fromFloats(Array(values.prefix(rows * cols)), shape: [rows, cols])
        let transposed = try Tensor(dtype: .float32, shape: [cols, rows], strides: [1, cols], storage: m.storage)
        let t = try transposed.converted(to: d)
        var expected = [UInt16]()
        for c in 0..<cols { for r in 0..<rows { expected.append(Self.reference(values[r * cols + c], d)) } }
        #expect(t.shape == [cols, rows] && Self.bits(t) == expected)

        let wide = try Tensor.make(dtype: .float64, shape: [n]) { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: Double(v), toByteOffset: i * 8, as: Double.self) }
        }
        #expect(Self.bits(try wide.converted(to: d)) == values.map { Self.reference($0, d) })
        // And back: float16/bfloat16 -> float32 is exact.
        let back = try direct.converted(to: .float32).floats()
        let widened = values.map { d == .float16 ? HalfConversion.halfToFloat(Self.reference($0, d)) : HalfConversion.bfloat16ToFloat(Self.reference($0, d)) }
        #expect(zip(back, widened).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
    }

    /// The producing writer calls back in file order and refuses a tensor unlike its declaration.
    @Test func producingWriterChecksWhatItWrites() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try Tensor.fromFloats([1, 2, 3, 4], shape: [2, 2]), b = try Tensor.fromFloats([5, 6], shape: [2])
        let declared = [(name: "b", tensor: try a.converted(to: .float16)), (name: "a", tensor: b)]
        var calls = [String]()
        try SafetensorsWriter.write(declared, to: dir + "/ok.safetensors") { name, d in
            calls.append(name)
            return try (name == "b" ? a : b).converted(to: d.dtype)
        }
        #expect(calls == ["a", "b"])  // F32 before F16
        let st = try SafetensorsFile.load(path: dir + "/ok.safetensors")
        #expect(st.tensor("b")?.dtype == .float16 && st.tensor("b")?.floats() == [1, 2, 3, 4])
        #expect(st.tensor("a")?.dtype == .float32 && st.tensor("a")?.floats() == [5, 6])
        #expect { try SafetensorsWriter.write(declared, to: dir + "/bad.safetensors") { _, _ in b } } throws: { e in
            "\(e)".contains("declared")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ok.safetensors"])
    }

    /// A package storing every weight in float16 (as written before vectors stayed float32) still
    /// reads and verifies.
    @Test func allHalfPackagesStillRead() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mixed = try CLIFixtures.miniPackage("f16", ["--dtype", "f16"])
        let pkg = dir + "/all-half.blc"
        try FileManager.default.createDirectory(atPath: pkg, withIntermediateDirectories: false)
        for f in [ModelPackage.graphFile, ModelPackage.metadataFile] {
            try FileManager.default.copyItem(atPath: mixed + "/" + f, toPath: pkg + "/" + f)
        }
        let st = try SafetensorsFile.load(path: mixed + "/" + ModelPackage.weightsFile)
        #expect(st.tensors.contains { $0.tensor.dtype == .float32 })
        try SafetensorsWriter.write(try st.tensors.map { (name: $0.name, tensor: try $0.tensor.converted(to: .float16)) },
                                    to: pkg + "/" + ModelPackage.weightsFile)
        let read = try ModelPackage.read(pkg)
        #expect(read.dtype == .float16 && read.weights.values.allSatisfy { $0.dtype == .float16 })
        let r = CLI.run(["verify", pkg] + CLIFixtures.miniClips + ["--rtol", "1e-2"])
        #expect(r.status == 0, "\(r.stdout)")
    }
}
