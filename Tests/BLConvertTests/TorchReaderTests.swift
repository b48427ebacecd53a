import Testing
import BLTestSupport
import Foundation
@testable import BLCore
@testable import BLPickle
@testable import BLTorch

/// Parser fixtures and their expected contents (`Fixtures/parsers/expected.json`, written by PyTorch).
enum ParserFixtures {
    static func path(_ name: String) -> String { TestData.fixture("parsers/" + name) }

    static let expected: JSON = {
        let url = URL(fileURLWithPath: path("expected.json"))
        guard let data = try? Data(contentsOf: url), let json = try? JSONParser.parse(Array(data)) else { return .null }
        return json
    }()

    /// Tensors of a value tree by dotted path.
    static func tensors(_ root: Value) -> [String: Tensor] {
        Dictionary(root.flattened().tensors.map { ($0.path, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// Checks one tensor against an expected.json entry: dtype, shape, strides, offset, every value.
    static func check(_ t: Tensor?, _ e: JSON, _ name: String, strides checkStrides: Bool = true) {
        guard let t else { Issue.record("missing tensor \(name)"); return }
        #expect(t.dtype.torchName == e["dtype"]?.stringValue, "\(name) dtype")
        #expect(t.shape == e["shape"]?.arrayValue?.compactMap(\.intValue), "\(name) shape")
        if checkStrides {
            #expect(t.strides == e["stride"]?.arrayValue?.compactMap(\.intValue), "\(name) strides")
            #expect(t.offset == e["storage_offset"]?.intValue, "\(name) storage offset")
        }
        let values = e["values"]?.arrayValue ?? []
        #expect(values.count == t.elementCount, "\(name) element count")
        if t.dtype == .int64 {
            let want = values.map { v -> Int64 in if case .int(let i) = v { return i }; return Int64.min }
            #expect(t.int64s() == want, "\(name) values")
        } else {
            let want = values.map { v -> Double in
                if case .bool(let b) = v { return b ? 1 : 0 }
                return v.doubleValue ?? .nan
            }
            #expect(t.doubles() == want, "\(name) values")
        }
    }

    /// A plain value against its JSON form (tuples and lists as arrays).
    static func same(_ v: Value, _ j: JSON) -> Bool {
        switch (v, j) {
        case (.none, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.bigInt(a), .rawNumber(b)): return a == b
        case let (.float(a), .double(b)): return a == b
        case let (.float(a), .int(b)): return a == Double(b)
        case let (.string(a), .string(b)): return a == b
        case let (.list(xs), .array(ys)), let (.tuple(xs), .array(ys)):
            return xs.count == ys.count && zip(xs, ys).allSatisfy { same($0, $1) }
        default: return false
        }
    }

    static func inside(_ t: Tensor, _ file: MappedFile) -> Bool {
        guard let base = t.storage.bytes.baseAddress, let fb = file.bytes.baseAddress else { return false }
        return base >= fb && base + t.storage.count <= fb + file.count
    }
}

@Suite struct TorchReaderTests {
    @Test(arguments: ["tensors_legacy.pth", "tensors_zip.pth"])
    func tensorsFixture(name: String) throws {
        let file = try TorchFile.load(path: ParserFixtures.path(name))
        #expect(file.format == (name.contains("zip") ? .zip : .legacy))
        let tensors = ParserFixtures.tensors(file.root)
        guard case .object(let expectedTensors)? = ParserFixtures.expected["tensors"] else {
            Issue.record("expected.json has no tensors section"); return
        }
        #expect(tensors.count == expectedTensors.count)
        for (key, e) in expectedTensors {
            ParserFixtures.check(tensors[key], e, key)
        }
        // Plain values sit at the top level of the saved dict.
        guard case .object(let extras)? = ParserFixtures.expected["extras"] else {
            Issue.record("expected.json has no extras section"); return
        }
        for (key, e) in extras {
            guard let v = file.root[key] else { Issue.record("missing extra \(key)"); continue }
            #expect(ParserFixtures.same(v, e), "extra \(key): \(v) vs \(e.serialized())")
        }
        if case .tuple(let xs)? = file.root["tuple"], xs.count == 2 {
            if case .tuple = xs[1] {} else { Issue.record("nested tuple lost its tuple type") }
        } else {
            Issue.record("'tuple' is not a tuple")
        }
        if case .list? = file.root["list"] {} else { Issue.record("'list' is not a list") }

        // Stored members and legacy storages are used in place, and shared storages stay shared.
        for (key, t) in tensors {
            #expect(ParserFixtures.inside(t, file.file), "\(key) was copied out of the mapping")
        }
        let a = try #require(tensors["shared_a"]), b = try #require(tensors["shared_b"]), s = try #require(tensors["slice"])
        #expect(a.storage === b.storage)
        #expect(a.storage === s.storage)
        #expect(tensors["f32"]?.storage !== a.storage)
    }

    @Test(arguments: ["train_legacy.pth.tar", "train_zip.pth.tar"])
    func trainingCheckpoint(name: String) throws {
        let file = try TorchFile.load(path: ParserFixtures.path(name))
        let root = file.root
        #expect(root["epoch"]?.intValue == 3)
        #expect(root["arch"]?.stringValue == "toy")
        let stateDict = try #require(root["state_dict"])
        let tensors = ParserFixtures.tensors(stateDict)
        guard case .object(let expected)? = ParserFixtures.expected["train"] else {
            Issue.record("expected.json has no train section"); return
        }
        #expect(tensors.count == expected.count)
        for (key, e) in expected { ParserFixtures.check(tensors[key], e, key) }

        guard case .tensor(let best)? = root["best_top1"] else { Issue.record("best_top1 is not a tensor"); return }
        #expect(best.shape == [] && best.dtype == .float32 && best.elementCount == 1)
        #expect(best.doubles().allSatisfy { $0.isFinite })

        // SGD state: integer keys 0..4 (parameter indices in state_dict order), momentum buffers shaped like them.
        guard case .dict(let state)? = root["optimizer"]?["state"] else { Issue.record("optimizer.state is not a dict"); return }
        let params = ["module.0.weight", "module.1.weight", "module.1.bias", "module.2.weight", "module.2.bias"]
        #expect(state.map { $0.key.intValue } == (0..<Int64(params.count)).map { Optional($0) })
        for (k, v) in state {
            guard let i = k.intValue, i >= 0, i < params.count, case .tensor(let buf)? = v["momentum_buffer"] else {
                Issue.record("bad optimizer state entry \(k.keyText)"); continue
            }
            #expect(buf.shape == tensors[params[Int(i)]]?.shape)
        }
        guard case .list(let groups)? = root["optimizer"]?["param_groups"], case .list(let ids)? = groups.first?["params"] else {
            Issue.record("optimizer.param_groups missing"); return
        }
        #expect(ids.map(\.intValue) == (0..<Int64(params.count)).map { Optional($0) })
    }

    @Test func miniLegacyCheckpoint() throws {
        let file = try TorchFile.load(path: TestData.fixture("mini-a2b4-f4x2/model.pth.tar"))
        #expect(file.format == .legacy)
        let flat = file.root.flattened()
        #expect(flat.tensors.count == 281)
        #expect(flat.others.isEmpty)
        let t = ParserFixtures.tensors(file.root)
        #expect(t["baseline_model.conv1.weight"]?.shape == [64, 3, 7, 7])
        #expect(t["baseline_model.bn1.num_batches_tracked"]?.shape == [])
        #expect(t["baseline_model.bn1.num_batches_tracked"]?.dtype == .int64)
        #expect(t["baseline_model.l_conv0.weight"]?.shape == [32, 64, 3, 3])
        for (name, x) in flat.tensors {
            #expect(ParserFixtures.inside(x, file.file), "\(name) copied")
            if x.dtype.isFloatingPoint { #expect(x.doubles().allSatisfy { $0.isFinite }, "\(name) finite") }
        }
    }

    @Test(.enabled(if: TestData.hasShared)) func zipDeflatedCheckpoint() throws {
        let path = TestData.shared("mini-a4b2-f3x2-blend5-fc/model.pth")
        let t0 = DispatchTime.now().uptimeNanoseconds
        let file = try TorchFile.load(path: path)
        print("deflated zip load (inflate + CRC of every member): \(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6) ms")
        #expect(file.format == .zip)
        let flat = file.root.flattened()
        #expect(flat.tensors.count == 315)
        let t = ParserFixtures.tensors(file.root)
        #expect(t["baseline_model.conv1.weight"]?.shape == [64, 3, 7, 7])
        // A plain fc head with 7 classes (manifest), fed by 2048 features of the last Bottleneck stage.
        let fc = try #require(t["baseline_model.fc.weight"])
        #expect(fc.shape == [7, 2048])
        for (name, x) in flat.tensors {
            // Deflated members are inflated (CRC-checked) into their own memory.
            #expect(!ParserFixtures.inside(x, file.file), "\(name)")
            #expect(x.isContiguous)
            if x.dtype.isFloatingPoint { #expect(x.doubles().allSatisfy { $0.isFinite }, "\(name) finite") }
        }
        // Batch-norm statistics come in consistent groups of four.
        for (name, x) in flat.tensors where name.hasSuffix(".running_mean") {
            let base = String(name.dropLast(".running_mean".count))
            for s in ["weight", "bias", "running_var"] { #expect(t[base + "." + s]?.shape == x.shape, "\(base).\(s)") }
        }
    }

    @Test(.enabled(if: TestData.hasShared)) func r50LegacyCheckpoint() throws {
        let path = TestData.shared("r50-a2b4-f8x2-ssv2/model.pth.tar")
        let file = try TorchFile.load(path: path)
        #expect(file.format == .legacy)
        let flat = file.root.flattened()
        #expect(flat.tensors.count == 449)
        let t = ParserFixtures.tensors(file.root)
        #expect(t["baseline_model.conv1.weight"]?.shape == [64, 3, 7, 7])
        #expect(t["new_fc.weight"]?.shape.first == 174)
        #expect(t["new_fc.bias"]?.shape == [174])
        #expect(flat.tensors.allSatisfy { ParserFixtures.inside($0.tensor, file.file) })
        #expect(flat.tensors.allSatisfy { $0.path.hasPrefix("baseline_model.") || $0.path.hasPrefix("new_fc.") })
    }

    /// The parse of the 100 MB legacy file maps and never reads the weights.
    @Test(.enabled(if: TestData.hasShared)) func r50LoadIsFast() throws {
        let path = TestData.shared("r50-a2b4-f8x2-ssv2/model.pth.tar")
        _ = try TorchFile.load(path: path)
        var best = UInt64.max
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let f = try TorchFile.load(path: path)
            let t1 = DispatchTime.now().uptimeNanoseconds
            #expect(f.root.flattened().tensors.count == 449)
            best = min(best, t1 - t0)
        }
        let ms = Double(best) / 1e6
        print("r50 legacy load: \(ms) ms")
        #expect(ms < 500, "loading took \(ms) ms")
    }

    @Test func detection() throws {
        for (name, zip) in [("tensors_zip.pth", true), ("tensors_legacy.pth", false)] {
            let f = try MappedFile(path: ParserFixtures.path(name))
            #expect(TorchFile.looksLikeZip(f.bytes) == zip)
            #expect(TorchFile.looksLikeLegacy(f.bytes) == !zip)
        }
        let pkl = try MappedFile(path: ParserFixtures.path("evil_eval.pkl"))
        #expect(PickleFile.looksLikePickle(pkl.bytes))
        #expect(!TorchFile.looksLikeLegacy(pkl.bytes))
        let e = try #require(throws: BLError.self) { try TorchFile.load(path: ParserFixtures.path("evil_eval.pkl")) }
        #expect(e.kind == .format && e.file == ParserFixtures.path("evil_eval.pkl"))
        let missing = try #require(throws: BLError.self) { try TorchFile.load(path: ParserFixtures.path("nope.pth")) }
        #expect(missing.kind == .io && missing.file != nil)
    }

    /// Big-endian checkpoints are reported as unsupported, not misread.
    @Test func bigEndianRefused() throws {
        func find(_ needle: [UInt8], in data: [UInt8], after: Int = 0) -> Int? {
            (after..<max(after, data.count - needle.count + 1)).first { Array(data[$0..<($0 + needle.count)]) == needle }
        }
        // zip: the stored `byteorder` member says "little"; make it "big" padded to the same size.
        let zipData = Array(try Data(contentsOf: URL(fileURLWithPath: ParserFixtures.path("tensors_zip.pth"))))
        let zip = try zipData.withUnsafeBytes { try ZipArchive($0) }
        let entry = try #require(zip.entries.first { $0.name.hasSuffix("/byteorder") })
        let range = try zip.dataRange(entry)
        #expect(Array(zipData[range]) == Array("little".utf8))
        var bigZip = zipData
        bigZip.replaceSubrange(range, with: Array("big   ".utf8))
        let o1 = ByteStorage(copying: bigZip)
        let e1 = try #require(throws: BLError.self) { try TorchFile.read(o1.bytes, owner: o1) }
        #expect(e1.kind == .unsupported && e1.message.contains("big-endian"), "\(e1)")

        // legacy: sys_info's little_endian True (NEWTRUE after the key) becomes False.
        let legacy = Array(try Data(contentsOf: URL(fileURLWithPath: ParserFixtures.path("tensors_legacy.pth"))))
        let key = try #require(find(Array("little_endian".utf8), in: legacy))
        let flag = try #require(find([0x88], in: legacy, after: key))
        var bigLegacy = legacy
        bigLegacy[flag] = 0x89
        let o2 = ByteStorage(copying: bigLegacy)
        let e2 = try #require(throws: BLError.self) { try TorchFile.read(o2.bytes, owner: o2) }
        #expect(e2.kind == .unsupported && e2.message.contains("big-endian"), "\(e2)")
    }

    /// Legacy storage views (`view_metadata = (view_key, offset, size)`, offset and size in elements,
    /// as old torch wrote them). Legacy pickles carry no offsets, so the `slice` tensor's persistent id
    /// can be rewritten in place: view 'v' = elements 5..<11 of its storage, tensor offset 0.
    @Test func legacyStorageView() throws {
        let data = Array(try Data(contentsOf: URL(fileURLWithPath: ParserFixtures.path("tensors_legacy.pth"))))
        func find(_ needle: [UInt8], after: Int = 0) -> Int? {
            (after..<max(after, data.count - needle.count + 1)).first { Array(data[$0..<($0 + needle.count)]) == needle }
        }
        let key = try #require(find([0x58, 0x05, 0, 0, 0] + Array("slice".utf8)))
        // ... BININT1 20, NONE, TUPLE (end of the persistent id) ... BINPERSID, BININT1 5 (storage offset)
        let pidEnd = try #require(find([0x4b, 20, 0x4e, 0x74], after: key))
        let offsetAt = try #require(find([0x51, 0x4b, 0x05], after: pidEnd))
        var patched = data
        patched[offsetAt + 2] = 0
        let view: [UInt8] = [0x58, 0x01, 0, 0, 0, 0x76, 0x4b, 0x05, 0x4b, 0x06, 0x87]
        patched.replaceSubrange((pidEnd + 2)..<(pidEnd + 3), with: view)
        let owner = ByteStorage(copying: patched)
        let (_, root) = try TorchFile.read(owner.bytes, owner: owner)
        let tensors = ParserFixtures.tensors(root)
        let t = try #require(tensors["slice"])
        #expect(t.offset == 0 && t.storage.count == 6 * 4)
        #expect(t.doubles() == [2.5, 3.0, 3.5, 4.0, 4.5, 5.0])
        // The root storage is still shared by the tensors that name it without a view.
        #expect(tensors["shared_a"]?.storage === tensors["shared_b"]?.storage)
        #expect(t.storage.bytes.baseAddress == tensors["shared_a"].flatMap { $0.storage.bytes.baseAddress.map { $0 + 20 } })
    }

    /// A ZIP64 archive written by hand around the members of tensors_zip.pth loads identically.
    @Test func zip64Archive() throws {
        let original = try TorchFile.load(path: ParserFixtures.path("tensors_zip.pth"))
        let src = original.file
        let archive = try ZipArchive(src.bytes)
        var out: [UInt8] = []
        func u16(_ v: Int) { out += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func u32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        func u64(_ v: Int) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(v) >> (8 * UInt64(i)))) } }
        var central: [(name: [UInt8], crc: UInt32, size: Int, offset: Int)] = []
        for e in archive.entries {
            let data = Array(src.bytes[try archive.dataRange(e)])
            let name = Array(e.name.utf8)
            // Keep stored data 64-byte aligned as torch does, with padding inside the local extra field.
            let headerEnd = out.count + 30 + name.count + 20 + 4
            let pad = (64 - headerEnd % 64) % 64
            let offset = out.count
            u32(0x0403_4b50); u16(45); u16(0); u16(0); u16(0); u16(0)
            u32(e.crc32); u32(0xffff_ffff); u32(0xffff_ffff)
            u16(name.count); u16(20 + 4 + pad)
            out += name
            u16(0x0001); u16(16); u64(data.count); u64(data.count)
            u16(0x4246); u16(pad); out += [UInt8](repeating: 0x5a, count: pad)
            out += data
            central.append((name, e.crc32, data.count, offset))
        }
        let cdStart = out.count
        for c in central {
            u32(0x0201_4b50); u16(45); u16(45); u16(0); u16(0); u16(0); u16(0)
            u32(c.crc); u32(0xffff_ffff); u32(0xffff_ffff)
            u16(c.name.count); u16(28); u16(0); u16(0); u16(0); u32(0); u32(0xffff_ffff)
            out += c.name
            u16(0x0001); u16(24); u64(c.size); u64(c.size); u64(c.offset)
        }
        let cdSize = out.count - cdStart
        let z64 = out.count
        u32(0x0606_4b50); u64(44); u16(45); u16(45); u32(0); u32(0)
        u64(central.count); u64(central.count); u64(cdSize); u64(cdStart)
        u32(0x0706_4b50); u32(0); u64(z64); u32(1)
        u32(0x0605_4b50); u16(0); u16(0); u16(0xffff); u16(0xffff); u32(0xffff_ffff); u32(0xffff_ffff); u16(0)

        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/zip64.pth"
        try Data(out).write(to: URL(fileURLWithPath: path))
        let copy = try TorchFile.load(path: path)
        #expect(copy.format == .zip)
        let a = original.root.flattened(), b = copy.root.flattened()
        #expect(a.tensors.map(\.path) == b.tensors.map(\.path))
        for (x, y) in zip(a.tensors, b.tensors) {
            #expect(x.tensor.dtype == y.tensor.dtype && x.tensor.shape == y.tensor.shape && x.tensor.strides == y.tensor.strides)
            #expect(x.tensor.contiguousBytes() == y.tensor.contiguousBytes(), "\(x.path)")
            #expect(ParserFixtures.inside(y.tensor, copy.file))
        }
        #expect(a.others.map(\.path) == b.others.map(\.path))
        #expect(a.others.map { "\($0.value)" } == b.others.map { "\($0.value)" })
    }
}
