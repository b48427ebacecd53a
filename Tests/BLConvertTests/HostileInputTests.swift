import Testing
import BLTestSupport
import Foundation
@testable import BLCore
@testable import BLPickle
@testable import BLTorch

/// Reads bytes the way the real loaders do: checkpoints through the torch reader, bare pickles
/// through the pickle reader. Touches every tensor element so out-of-bounds views would show.
private func attempt(_ data: [UInt8], pickle: Bool) -> (loaded: Bool, error: (any Error)?) {
    let owner = ByteStorage(copying: data)
    do {
        if pickle {
            _ = try PickleFile.read(owner.bytes, name: "fuzz.pkl")
        } else {
            let (_, root) = try TorchFile.read(owner.bytes, owner: owner)
            for (_, t) in root.flattened().tensors { _ = t.doubles() }
        }
        return (true, nil)
    } catch let e as BLError {
        _ = e.description
        return (false, nil)
    } catch {
        return (false, error)
    }
}

/// Deterministic pseudo-random numbers (64-bit LCG) so failures reproduce.
private struct LCG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 17
    }
}

private let marker = ParserFixtures.expected["evil"]?["marker"]?.stringValue ?? "/tmp/blconvert-evil-marker"

@Suite struct TorchPickleHostileTests {
    @Test(arguments: ["evil_os_system", "evil_eval", "evil_exec"])
    func evilCheckpointsRefused(name: String) throws {
        let global = try #require(ParserFixtures.expected["evil"]?["globals"]?[name]?.stringValue)
        for suffix in ["_legacy.pth", "_zip.pth"] {
            let path = ParserFixtures.path(name + suffix)
            let e = try #require(throws: BLError.self) { try TorchFile.load(path: path) }
            #expect(e.kind == .refused, "\(path)")
            #expect(e.message == "refusing global \(global)", "\(path)")
            #expect(e.file == path)
            let location = e.location ?? ""
            #expect(location.contains(suffix == "_zip.pth" ? "data.pkl at byte " : "object pickle at byte "), "\(location)")
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Hand-written pickles that try to break the reader's limits.
    @Test func craftedPickles() throws {
        func expectError(_ b: [UInt8], _ what: String, kind: BLError.Kind? = nil, message: String? = nil) {
            do {
                let v = try unpickle(b)
                Issue.record("\(what): loaded \(v)")
            } catch let e as BLError {
                if let kind { #expect(e.kind == kind, "\(what): \(e)") }
                if let message { #expect(e.message.contains(message), "\(what): \(e)") }
            } catch {
                Issue.record("\(what): non-BLError \(error)")
            }
        }
        let p2: [UInt8] = [0x80, 0x02]
        expectError([], "empty input")
        expectError(p2 + [0x4b, 0x01], "no STOP")
        expectError(p2 + [0xff, 0x2e], "unknown opcode")
        expectError(p2 + [0x2e], "STOP on an empty stack")
        // A list holding itself: EMPTY_LIST BINPUT 0 BINGET 0 APPEND STOP
        expectError(p2 + [0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e], "self-containing list")
        // 100000 nested one-element tuples
        expectError(p2 + [0x4b, 0x01] + [UInt8](repeating: 0x85, count: 100_000) + [0x2e], "deep tuples")
        // 100000 nested MARK ... TUPLE
        expectError(p2 + [UInt8](repeating: 0x28, count: 100_000) + [UInt8](repeating: 0x74, count: 100_000) + [0x2e], "deep marks")
        // 2^64 leaves through shared references: x = (x, x) 64 times
        expectError(p2 + [0x4b, 0x01] + Array([[UInt8]](repeating: [0x32, 0x86], count: 64).joined()) + [0x2e], "exponential sharing")
        // Length fields far beyond the input
        expectError(p2 + [0x8b, 0xff, 0xff, 0xff, 0x7f, 0x2e], "LONG4 huge")
        expectError(p2 + [0x8b, 0x00, 0x00, 0x01, 0x00] + [UInt8](repeating: 1, count: 65536) + [0x2e], "LONG4 too long to convert")
        expectError(p2 + [0x58, 0xff, 0xff, 0xff, 0xff, 0x2e], "BINUNICODE huge")
        expectError(p2 + [0x8e] + [UInt8](repeating: 0xff, count: 8) + [0x2e], "BINBYTES8 huge")
        expectError(p2 + [0x95] + [UInt8](repeating: 0x7f, count: 8) + [0x2e], "FRAME huge")
        expectError(p2 + [0x54, 0xff, 0xff, 0xff, 0xff, 0x2e], "BINSTRING negative")
        expectError(p2 + [0x68, 0x07, 0x2e], "GET of a missing memo entry")
        expectError(p2 + [0x30, 0x2e], "POP on an empty stack")
        expectError(p2 + [0x65, 0x2e], "APPENDS without MARK")
        expectError(p2 + [0x4b, 0x01, 0x4b, 0x02, 0x61, 0x2e], "APPEND to an int")
        expectError(p2 + [0x7d, 0x28, 0x4b, 0x01, 0x75, 0x2e], "SETITEMS with an odd count")
        // Globals that must be refused, however they are spelled.
        let stackGlobal: [UInt8] = [0x80, 0x04, 0x8c, 0x02] + Array("os".utf8) + [0x8c, 0x06] + Array("system".utf8) + [0x93, 0x2e]
        expectError(stackGlobal, "STACK_GLOBAL os.system", kind: .refused, message: "refusing global os.system")
        expectError(Array("(ios\nsystem\nS'touch x'\n.".utf8), "INST os.system", kind: .refused, message: "refusing global os.system")
        expectError(Array("cbuiltins\ngetattr\n.".utf8), "getattr", kind: .refused, message: "refusing global builtins.getattr")
        expectError(Array("ctorch\nload\n.".utf8), "torch.load", kind: .refused, message: "refusing global torch.load")
        expectError(Array("cnumpy.core.multiarray\n_reconstruct\n.".utf8), "numpy", kind: .refused)
        expectError(p2 + [0x82, 0x01, 0x2e], "EXT1", kind: .refused)
        // Allowlisted names are still only applied with their own meaning.
        expectError(Array("ctorch\nFloatStorage\n)R.".utf8), "calling a storage type")
        // _rebuild_tensor_v2 applied to (1, 2, 3, 4, False, None): no storage
        expectError(Array("ctorch._utils\n_rebuild_tensor_v2\n(".utf8) + [0x4b, 1, 0x4b, 2, 0x4b, 3, 0x4b, 4, 0x89, 0x4e, 0x74, 0x52, 0x2e],
                    "rebuild without a storage", message: "needs a storage")
        expectError(p2 + [0x29, 0x29, 0x52, 0x2e], "REDUCE on a tuple")
        expectError(p2 + [0x29, 0x29, 0x81, 0x2e], "NEWOBJ on a tuple")
        // A storage in a bare pickle has no bytes to point at.
        let pid = Array("(S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\nI4\ntQ.".utf8)
        expectError(pid, "storage in a bare pickle", kind: .unsupported)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// A stride-0 view may claim any size over one element; an implausibly large one is refused
    /// so no consumer is asked to materialise it. Legacy pickles carry no offsets, so bytes can be
    /// replaced in place: `expanded` (size (2, 3), stride (0, 1)) becomes size (2**30, 3).
    @Test func hugeBroadcastView() throws {
        let data = Array(try Data(contentsOf: URL(fileURLWithPath: ParserFixtures.path("tensors_legacy.pth"))))
        let name = Array("expanded".utf8)
        let at = try #require((0..<(data.count - name.count)).first { Array(data[$0..<($0 + name.count)]) == name })
        let size: [UInt8] = [0x4b, 0x02, 0x4b, 0x03, 0x86]
        let sizeAt = try #require((at..<(data.count - size.count)).first { Array(data[$0..<($0 + size.count)]) == size })
        var patched = data
        patched.replaceSubrange(sizeAt..<(sizeAt + 2), with: [0x4a, 0x00, 0x00, 0x00, 0x40])
        let owner = ByteStorage(copying: patched)
        let e = try #require(throws: BLError.self) { try TorchFile.read(owner.bytes, owner: owner) }
        #expect(e.message.contains("implausible"), "\(e)")
        #expect(e.location?.contains("expanded") == true, "\(e)")
        // The same edit with a plausible size loads and broadcasts.
        var fine = data
        fine.replaceSubrange(sizeAt..<(sizeAt + 2), with: [0x4a, 0x00, 0x04, 0x00, 0x00])
        let owner2 = ByteStorage(copying: fine)
        let (_, root) = try TorchFile.read(owner2.bytes, owner: owner2)
        let t = try #require(ParserFixtures.tensors(root)["expanded"])
        #expect(t.shape == [1024, 3] && t.strides == [0, 1])
        #expect(t.doubles() == Array([[Double]](repeating: [1, 2, 3], count: 1024).joined()))
    }

    static let smallFiles = [
        "tensors_legacy.pth", "tensors_zip.pth", "train_legacy.pth.tar", "train_zip.pth.tar",
        "evil_os_system.pkl", "evil_eval.pkl", "evil_exec.pkl",
        "evil_os_system_legacy.pth", "evil_eval_legacy.pth", "evil_exec_legacy.pth",
        "evil_os_system_zip.pth", "evil_eval_zip.pth", "evil_exec_zip.pth",
    ]

    /// Every truncation of every parser fixture loads or fails with a BLError.
    @Test(arguments: smallFiles)
    func truncated(name: String) throws {
        let data = Array(try Data(contentsOf: URL(fileURLWithPath: ParserFixtures.path(name))))
        let pickle = name.hasSuffix(".pkl")
        var loads = 0
        for cut in 0..<data.count {
            let r = attempt(Array(data[..<cut]), pickle: pickle)
            if let e = r.error { Issue.record("\(name) cut at \(cut): \(e)") }
            if r.loaded { loads += 1 }
        }
        // A checkpoint is only whole when complete (a bare pickle is whole once its STOP is read).
        if !pickle { #expect(loads == 0, "\(name): \(loads) truncations loaded") }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Hundreds of deterministic byte flips per fixture: load or BLError, never a crash or hang.
    @Test(arguments: smallFiles)
    func flipped(name: String) throws {
        let data = Array(try Data(contentsOf: URL(fileURLWithPath: ParserFixtures.path(name))))
        let pickle = name.hasSuffix(".pkl")
        var rng = LCG(state: UInt64(truncatingIfNeeded: name.utf8.reduce(5381) { ($0 &* 33) &+ Int($1) }))
        var refusedOrFailed = 0
        for variant in 0..<400 {
            var d = data
            let flips = 1 + Int(rng.next() % 3)
            for _ in 0..<flips {
                let at = Int(rng.next() % UInt64(d.count))
                // Half the variants write special values that hit length and count fields hardest.
                let specials: [UInt8] = [0x00, 0xff, 0x7f, 0x80]
                d[at] = variant % 2 == 0 ? d[at] ^ UInt8(1 + rng.next() % 255) : specials[Int(rng.next() % 4)]
            }
            let r = attempt(d, pickle: pickle)
            if let e = r.error { Issue.record("\(name) variant \(variant): \(e)") }
            if !r.loaded { refusedOrFailed += 1 }
        }
        #expect(refusedOrFailed > 0)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// A spread of truncations of the bigger real checkpoints (views of the mapping, no copies).
    @Test func truncatedBigCheckpoints() throws {
        var paths = [TestData.fixture("mini-a2b4-f4x2/model.pth.tar")]
        if let p = TestData.sharedIfPresent("mini-a4b2-f3x2-blend5-fc/model.pth") { paths.append(p) }
        for path in paths {
            let file = try MappedFile(path: path)
            let n = file.count
            var cuts = (0..<100).map { $0 * 97 }             // the pickles at the start
            cuts += (1..<100).map { n / 100 * $0 }           // storages / members
            cuts += (1...8).map { n - $0 * 3 }               // end records
            for cut in cuts where cut >= 0 && cut < n {
                do {
                    _ = try TorchFile.read(UnsafeRawBufferPointer(rebasing: file.bytes[..<cut]), owner: file)
                    Issue.record("\(path) truncated at \(cut) loaded")
                } catch is BLError {
                } catch {
                    Issue.record("\(path) cut at \(cut): \(error)")
                }
            }
        }
    }
}
