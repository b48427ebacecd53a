import Foundation
import Testing
import BLTestSupport
@testable import BLConvert
import BLCore
import BLEngine
import BLKernels
import BLSafetensors
import BLVNet

/// The package's kernel cache (`kernels.safetensors`): written by import, used by loading where
/// it is exactly what binding would compute, ignored (and the weights packed) everywhere else.
@Suite struct KernelCacheTests {
    static let mini = TestData.fixture("mini-a2b4-f4x2")
    static let clip = URL(fileURLWithPath: mini + "/clip0.safetensors")

    /// A fresh mini package in `dir` (with its cache unless `cache` is false).
    static func importMini(_ dir: String, cache: Bool = true) throws -> (String, Converter.ImportSummary) {
        let path = dir + "/mini.blc"
        let s = try Converter.importCheckpoint(URL(fileURLWithPath: mini + "/model.pth.tar"), to: URL(fileURLWithPath: path),
                                               frames: 8, overwrite: true, kernelCache: cache)
        return (path, s)
    }

    static func logits(_ model: BLVNetModel) throws -> [Float] {
        try model.logits(for: Clip(contentsOf: clip)).values
    }

    static func cachePath(_ package: String) -> String { package + "/" + KernelCache.fileName }

    /// Rewrites the package's cache with `metadata` edited and each tensor's floats mapped.
    static func rewriteCache(_ package: String, metadata edit: (inout [(String, String)]) -> Void,
                             floats map: ([Float]) -> [Float] = { $0 }) throws {
        let path = cachePath(package)
        let file = try SafetensorsFile.load(path: path)
        var meta = file.metadata
        edit(&meta)
        let tensors = try file.tensors.map { t -> (name: String, tensor: Tensor) in
            let v = map(t.tensor.floats())
            return (t.name, try Tensor.fromFloats(v, shape: [v.count]))
        }
        let temp = path + ".new"
        try SafetensorsWriter.write(tensors, metadata: meta, to: temp)
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: temp, toPath: path)
    }

    @Test func importWritesACacheThatLoadingUsesWithIdenticalResults() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (package, summary) = try Self.importMini(dir)
        guard CachedConvWeights.layout != nil else {
            // No packed kernels on this CPU: nothing to cache.
            #expect(summary.kernelCache.layers == 0 && FileKind.of(Self.cachePath(package)) == .missing)
            return
        }
        #expect(summary.kernelCache.layers > 0 && summary.kernelCache.bytes > 0)
        #expect(FileKind.of(Self.cachePath(package)) == .regular)
        #expect(summary.stageSeconds.contains { $0.stage == "kernel_cache" })

        let cached = try BLVNetModel(package: URL(fileURLWithPath: package), options: RuntimeOptions(threads: 2))
        let use = cached.kernelCacheUse
        #expect(use.layers == summary.kernelCache.layers && use.cached == use.layers)
        #expect(cached.kernelCacheIgnored == nil)
        let described = try #require(KernelCache.describe(packageDirectory: package))
        #expect(described.layers == use.cached && described.bytes == summary.kernelCache.bytes && described.ignored == nil)
        let withCache = try Self.logits(cached)

        // The same package without its cache packs at load: the same logits, bit for bit.
        try FileManager.default.removeItem(atPath: Self.cachePath(package))
        let packed = try BLVNetModel(package: URL(fileURLWithPath: package), options: RuntimeOptions(threads: 2))
        #expect(packed.kernelCacheUse.cached == 0 && packed.kernelCacheIgnored == nil)
        let without = try Self.logits(packed)
        #expect(withCache.map(\.bitPattern) == without.map(\.bitPattern))

        // Against the reference's float64 logits, as every load must be.
        let ref = try #require(SafetensorsFile.load(path: Self.clip.path).tensor("logits_f64")).doubles()
        let scale = ref.map(abs).max() ?? 1
        #expect((zip(withCache, ref).map { abs(Double($0) - $1) }.max() ?? .infinity) / scale < 1e-5)

        // --no-kernel-cache writes none; bf16 compute does not read one.
        let (plain, s2) = try Self.importMini(dir, cache: false)
        #expect(s2.kernelCache.layers == 0 && FileKind.of(Self.cachePath(plain)) == .missing)
    }

    @Test func aCacheMadeElsewhereOrStaleIsIgnoredAndTheWeightsPacked() throws {
        guard CachedConvWeights.layout != nil else { return }
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (package, _) = try Self.importMini(dir)
        try FileManager.default.copyItem(atPath: Self.cachePath(package), toPath: dir + "/good.safetensors")
        let reference = try Self.logits(BLVNetModel(package: URL(fileURLWithPath: package)))
        func restore() throws {
            try? FileManager.default.removeItem(atPath: Self.cachePath(package))
            try FileManager.default.copyItem(atPath: dir + "/good.safetensors", toPath: Self.cachePath(package))
        }
        func load() throws -> BLVNetModel {
            let model = try BLVNetModel(package: URL(fileURLWithPath: package), options: RuntimeOptions(threads: 2))
            #expect(try Self.logits(model).map(\.bitPattern) == reference.map(\.bitPattern))
            return model
        }
        func set(_ key: String, _ value: String) -> (inout [(String, String)]) -> Void {
            { meta in meta = meta.map { $0.0 == key ? ($0.0, value) : $0 } }
        }

        // Another CPU's depth slice: the whole cache is ignored, and said so.
        try Self.rewriteCache(package, metadata: set("kc", "9999"))
        var m = try load()
        #expect(m.kernelCacheUse.cached == 0 && (m.kernelCacheIgnored ?? "").contains("kc 9999"))
        #expect(KernelCache.describe(packageDirectory: package)?.ignored == m.kernelCacheIgnored)

        // `prepare` (library and command) writes one for this CPU in its place.
        let prepared = try Converter.writeKernelCache(package: URL(fileURLWithPath: package))
        m = try load()
        #expect(prepared.layers == m.kernelCacheUse.layers && m.kernelCacheUse.cached == prepared.layers && m.kernelCacheIgnored == nil)
        try Self.rewriteCache(package, metadata: set("kc", "9999"))
        let r = CLI.run(["prepare", package, "--json"])
        #expect(r.status == 0 && (try? JSONParser.parse(r.stdout))?["layers"]?.intValue == prepared.layers, "\(r.stdout) \(r.stderr)")
        #expect(try load().kernelCacheUse.cached == prepared.layers)
        let notPackage = CLI.run(["prepare", dir])
        #expect(notPackage.status == 2 && notPackage.stderr.contains("not a model package"), "\(notPackage.stderr)")

        // Made from another weights file.
        try restore()
        try Self.rewriteCache(package, metadata: set("weights_bytes", "12"))
        m = try load()
        #expect(m.kernelCacheUse.cached == 0 && (m.kernelCacheIgnored ?? "").contains("another weights file"))

        // Not a kernel cache at all, and bytes that are not safetensors.
        try restore()
        try Self.rewriteCache(package, metadata: set("format", "something-else"))
        m = try load()
        #expect(m.kernelCacheUse.cached == 0 && m.kernelCacheIgnored != nil)
        try FileManager.default.removeItem(atPath: Self.cachePath(package))
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: URL(fileURLWithPath: Self.cachePath(package)))
        m = try load()
        #expect(m.kernelCacheUse.cached == 0 && (m.kernelCacheIgnored ?? "").contains("unreadable"))

        // Entries whose values are not the packed weights (a stale cache beside new weights):
        // each fails its spot checks and is packed instead; the cache itself is not blamed.
        try restore()
        try Self.rewriteCache(package, metadata: { _ in }, floats: { v in v.map { $0 + 1 } })
        m = try load()
        #expect(m.kernelCacheUse.cached == 0 && m.kernelCacheIgnored == nil)

        // Entries of the wrong size, and choices no kernel makes (a hostile or damaged cache):
        // each is refused by its layer, and the weights packed.
        try restore()
        try Self.rewriteCache(package, metadata: { _ in }, floats: { v in Array(v.dropLast()) })
        m = try load()
        #expect(m.kernelCacheUse.cached == 0 && m.kernelCacheIgnored == nil)
        try restore()
        try Self.rewriteCache(package, metadata: { meta in
            meta = meta.map { k, v in
                (k, k == "layers" ? v.replacingOccurrences(of: "\"gemm\"", with: "\"winograd\", \"tile\": 99")
                    .replacingOccurrences(of: "\"tile\":4", with: "\"tile\":-4") : v)
            }
        })
        m = try load()
        #expect(m.kernelCacheUse.cached <= 3 && m.kernelCacheIgnored == nil)

        // A choice recorded for another policy: entries are used only where the policy's choice
        // replayed on the recorded errors is the recorded one.
        try restore()
        let p = try ModelPackage.read(package)
        let loaded = KernelCache.read(packageDirectory: package)
        #expect(loaded.ignored == nil && !loaded.entries.isEmpty)
        let standard = try Engine(graph: p.graph, weights: p.weights, context: KernelContext(threads: 2),
                                  precision: .float32, winograd: .standard, kernelCache: loaded.entries)
        let off = try Engine(graph: p.graph, weights: p.weights, context: KernelContext(threads: 2),
                             precision: .float32, winograd: .off, kernelCache: loaded.entries)
        let wino = standard.layerPaths.filter { if case .winograd = $0.path { return true } else { return false } }
        let cacheable = standard.layerPaths.filter { $0.path == .gemm || wino.map(\.node).contains($0.node) }
        let allCached = cacheable.allSatisfy { $0.fromCache }
        #expect(!cacheable.isEmpty && allCached)
        for layer in off.layerPaths where wino.map(\.node).contains(layer.node) {
            #expect(layer.path == .gemm && !layer.fromCache)
        }
        for layer in off.layerPaths where layer.path == .gemm && !wino.map(\.node).contains(layer.node) {
            #expect(layer.fromCache)
        }
        let x = try Clip(contentsOf: Self.clip).tensor
        #expect(try standard.run(x).floats().map(\.bitPattern) == reference.map(\.bitPattern))
        let offOut = try off.run(x).floats()
        let scale = reference.map { abs(Double($0)) }.max() ?? 1
        #expect((zip(offOut, reference).map { abs(Double($0) - Double($1)) }.max() ?? .infinity) / scale < 1e-5)
    }
}
