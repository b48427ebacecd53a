import CHDF5
import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLHDF5
@testable import BLHDF5Library

@Suite struct HDF5Tests {
    static func expected(_ section: String) throws -> [(String, JSON)] {
        let bytes = try #require(FileManager.default.contents(atPath: TestData.fixture("parsers/expected.json")))
        return try #require(try JSONParser.parse(Array(bytes))[section]?.objectValue)
    }

    /// Every tensor of an expected.json section: dtype, shape and every value exactly.
    static func checkAgainstExpected(_ contents: HDF5Contents, section: String) throws {
        let expected = try expected(section)
        #expect(contents.tensors.count == expected.count)
        for (name, e) in expected {
            guard let t = contents.tensors.first(where: { $0.name == name })?.tensor else {
                Issue.record("missing tensor \(name)")
                continue
            }
            #expect(t.dtype.torchName == e["dtype"]?.stringValue, "\(name)")
            #expect(t.shape == (e["shape"]?.arrayValue ?? []).compactMap(\.intValue), "\(name)")
            let values = try #require(e["values"]?.arrayValue)
            switch t.dtype {
            case .bool:
                #expect(t.int64s() == values.map { $0 == .bool(true) ? 1 : 0 }, "\(name)")
            case .int64, .int32, .int16, .int8, .uint8:
                #expect(t.int64s() == values.compactMap { $0.intValue.map(Int64.init) }, "\(name)")
            default:
                #expect(t.doubles() == values.compactMap(\.doubleValue), "\(name)")
            }
        }
    }

    @Test func readsFlatFile() throws {
        let c = try HDF5Reader.read(path: TestData.fixture("parsers/tensors_flat.h5"))
        try Self.checkAgainstExpected(c, section: "h5_flat")
        #expect(c.skipped.count == 1)
        #expect(c.skipped.first?.name == "notes")
        #expect(c.skipped.first?.reason.contains("string") == true)
        #expect(c.attributes.count == 1)
        #expect(c.attributes.first?.name == "attr.framework")
        #expect(c.attributes.first?.value.stringValue == "pytorch")
        // Owned, contiguous storage.
        for (_, t) in c.tensors { #expect(t.isContiguous && t.storage.count == t.byteCount) }
    }

    @Test func readsNestedGroups() throws {
        let c = try HDF5Reader.read(path: TestData.fixture("parsers/tensors_nested.h5"))
        try Self.checkAgainstExpected(c, section: "h5_nested")
        #expect(c.skipped.isEmpty && c.attributes.isEmpty)
        // libhdf5 name order, depth first.
        #expect(c.tensors.map(\.name) == [
            "module.0.weight", "module.1.bias", "module.1.num_batches_tracked", "module.1.running_mean",
            "module.1.running_var", "module.1.weight", "module.2.bias", "module.2.weight",
        ])
    }

    @Test func readsModelCheckpoint() throws {
        let path = TestData.fixture("mini-a2b4-f4x2/model_nested.h5")
        let clock = ContinuousClock()
        let start = clock.now
        let c = try HDF5Reader.read(path: path)
        let elapsed = clock.now - start
        print("HDF5 model_nested.h5: \(c.tensors.count) tensors in \(elapsed)")
        #expect(c.tensors.count == 281)
        #expect(c.skipped.isEmpty)
        let conv1 = try #require(c.tensors.first { $0.name == "baseline_model.conv1.weight" }?.tensor)
        #expect(conv1.dtype == .float32 && conv1.shape == [64, 3, 7, 7])
        // BatchNorm counters are int64 scalars; every other tensor float32.
        for (name, t) in c.tensors {
            if name.hasSuffix("num_batches_tracked") { #expect(t.dtype == .int64 && t.shape == []) }
            else { #expect(t.dtype == .float32, "\(name)") }
        }
        // Weight values are exactly representable in bfloat16 (fixtures README): a check that the
        // gzip+shuffle chunks decoded to the right bytes rather than noise.
        let w = conv1.floats()
        #expect(w.allSatisfy { $0.bitPattern & 0xffff == 0 })
        #expect(w.contains { $0 != 0 })
    }

    // MARK: files written here through libhdf5

    /// Writes a dataset of `fileType` from `bytes` (already in the file type's layout).
    static func writeDataset(_ loc: hid_t, _ name: String, _ fileType: hid_t, dims: [hsize_t]?, bytes: [UInt8], dcpl: hid_t? = nil) throws {
        let sid = dims.map { d in H5Screate_simple(Int32(d.count), d, nil) } ?? H5Screate(H5S_SCALAR)
        defer { H5Sclose(sid) }
        let did = H5Dcreate2(loc, name, fileType, sid, blc_h5p_default(), dcpl ?? blc_h5p_default(), blc_h5p_default())
        try #require(did >= 0, "create \(name): \(HDF5Library.errorStackText())")
        defer { H5Dclose(did) }
        if !bytes.isEmpty {
            let status = bytes.withUnsafeBytes { H5Dwrite(did, fileType, blc_h5s_all(), blc_h5s_all(), blc_h5p_default(), $0.baseAddress) }
            try #require(status >= 0, "write \(name)")
        }
    }

    static func writeAttribute(_ loc: hid_t, _ name: String, _ type: hid_t, count: Int?, bytes: UnsafeRawPointer) throws {
        let sid = count.map { n in var d = [hsize_t(n)]; return H5Screate_simple(1, &d, nil) } ?? H5Screate(H5S_SCALAR)
        defer { H5Sclose(sid) }
        let aid = H5Acreate2(loc, name, type, sid, blc_h5p_default(), blc_h5p_default())
        try #require(aid >= 0)
        defer { H5Aclose(aid) }
        try #require(H5Awrite(aid, type, bytes) >= 0)
    }

    static func le<T: FixedWidthInteger>(_ xs: [T]) -> [UInt8] { xs.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } } }
    static func be<T: FixedWidthInteger>(_ xs: [T]) -> [UInt8] { xs.flatMap { withUnsafeBytes(of: $0.bigEndian) { Array($0) } } }

    /// A file covering what h5py fixtures do not: bfloat16 and big-endian data, unsigned and
    /// compound types, a foreign 16-bit float, external storage, group and dataset attributes,
    /// numeric arrays and fixed-length strings, a user block.
    @Test func readsSynthesizedTypes() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/types.h5"
        try HDF5Library.withLock {
            let fcpl = H5Pcreate(blc_h5p_file_create())
            defer { H5Pclose(fcpl) }
            _ = H5Pset_userblock(fcpl, 512)
            let fid = H5Fcreate(path, blc_h5f_acc_trunc(), fcpl, blc_h5p_default())
            try #require(fid >= 0)
            defer { H5Fclose(fid) }

            // bfloat16: 1, -2, 0.5 as a custom float type, little-endian.
            let bf = H5Tcopy(blc_h5t_native_float())
            defer { H5Tclose(bf) }
            _ = H5Tset_fields(bf, 15, 7, 8, 0, 7)
            _ = H5Tset_precision(bf, 16)
            _ = H5Tset_size(bf, 2)
            _ = H5Tset_ebias(bf, 127)
            try Self.writeDataset(fid, "bf16", bf, dims: [3], bytes: Self.le([UInt16(0x3f80), 0xc000, 0x3f00]))

            // IEEE half stored big-endian.
            let halfBE = H5Tcopy(blc_h5t_native_float())
            defer { H5Tclose(halfBE) }
            _ = H5Tset_fields(halfBE, 15, 10, 5, 0, 10)
            _ = H5Tset_precision(halfBE, 16)
            _ = H5Tset_size(halfBE, 2)
            _ = H5Tset_ebias(halfBE, 15)
            _ = H5Tset_order(halfBE, H5T_ORDER_BE)
            try Self.writeDataset(fid, "f16be", halfBE, dims: [2], bytes: Self.be([UInt16(0x3c00), 0xc400]))

            // A 16-bit float with another layout (6 exponent bits) is skipped.
            let odd = H5Tcopy(blc_h5t_native_float())
            defer { H5Tclose(odd) }
            _ = H5Tset_fields(odd, 15, 9, 6, 0, 9)
            _ = H5Tset_precision(odd, 16)
            _ = H5Tset_size(odd, 2)
            _ = H5Tset_ebias(odd, 31)
            try Self.writeDataset(fid, "f16odd", odd, dims: [1], bytes: [0, 0])

            let g = H5Gcreate2(fid, "g", blc_h5p_default(), blc_h5p_default(), blc_h5p_default())
            try #require(g >= 0)
            defer { H5Gclose(g) }

            // Big-endian float32 and int32.
            let f32be = H5Tcopy(blc_h5t_native_float()); defer { H5Tclose(f32be) }
            _ = H5Tset_order(f32be, H5T_ORDER_BE)
            try Self.writeDataset(fid, "f32be", f32be, dims: [2, 2], bytes: Self.be([Float(1.5), -2, 3.25, 1e-3].map(\.bitPattern)))
            let i32be = H5Tcopy(blc_h5t_native_int32()); defer { H5Tclose(i32be) }
            _ = H5Tset_order(i32be, H5T_ORDER_BE)
            try Self.writeDataset(fid, "g/i32be", i32be, dims: [3], bytes: Self.be([Int32(-7), 0, Int32.max]))

            // Unsigned 16-bit and compound are listed as skipped.
            try Self.writeDataset(fid, "g/u16", blc_h5t_native_uint16(), dims: [2], bytes: Self.le([UInt16(1), 2]))
            let compound = H5Tcreate(H5T_COMPOUND, 8); defer { H5Tclose(compound) }
            _ = H5Tinsert(compound, "a", 0, blc_h5t_native_int32())
            _ = H5Tinsert(compound, "b", 4, blc_h5t_native_float())
            try Self.writeDataset(fid, "g/compound", compound, dims: [1], bytes: [UInt8](repeating: 0, count: 8))

            // Raw data in an external file is never followed.
            let dcpl = H5Pcreate(blc_h5p_dataset_create()); defer { H5Pclose(dcpl) }
            _ = H5Pset_external(dcpl, dir + "/external.bin", 0, 16)
            try Self.writeDataset(fid, "external", blc_h5t_native_float(), dims: [4], bytes: Self.le([Float(1), 2, 3, 4].map(\.bitPattern)), dcpl: dcpl)

            // Scalar and empty datasets in a nested group; uint8 with a chunked+gzip layout.
            let gid = H5Gcreate2(fid, "g/h", blc_h5p_default(), blc_h5p_default(), blc_h5p_default())
            try #require(gid >= 0)
            defer { H5Gclose(gid) }
            try Self.writeDataset(gid, "scalar", blc_h5t_native_int64(), dims: nil, bytes: Self.le([Int64(-5)]))
            try Self.writeDataset(gid, "empty", blc_h5t_native_double(), dims: [0, 4], bytes: [])
            let chunked = H5Pcreate(blc_h5p_dataset_create()); defer { H5Pclose(chunked) }
            var chunk: [hsize_t] = [7]
            _ = H5Pset_chunk(chunked, 1, &chunk)
            _ = H5Pset_shuffle(chunked)
            _ = H5Pset_deflate(chunked, 6)
            try Self.writeDataset(gid, "u8", blc_h5t_native_uint8(), dims: [20], bytes: (0..<20).map { UInt8($0 * 13) }, dcpl: chunked)

            // Attributes: on the root, on a group, on a dataset.
            var epoch: Int32 = 12
            try Self.writeAttribute(fid, "epoch", blc_h5t_native_int32(), count: nil, bytes: &epoch)
            var lr = [0.1, 0.01]
            try Self.writeAttribute(gid, "lr", blc_h5t_native_double(), count: 2, bytes: &lr)
            var big: UInt64 = .max
            try Self.writeAttribute(gid, "big", blc_h5t_native_uint64(), count: nil, bytes: &big)
            let fixed = H5Tcopy(blc_h5t_c_s1()); defer { H5Tclose(fixed) }
            _ = H5Tset_size(fixed, 8)
            var text: [UInt8] = Array("resnet\0\0".utf8)
            let did = H5Dopen2(fid, "bf16", blc_h5p_default()); defer { H5Dclose(did) }
            try Self.writeAttribute(did, "arch", fixed, count: nil, bytes: &text)
        }

        let c = try HDF5Reader.read(path: path)
        func tensor(_ n: String) -> Tensor? { c.tensors.first { $0.name == n }?.tensor }
        #expect(tensor("bf16")?.dtype == .bfloat16)
        #expect(tensor("bf16")?.floats() == [1, -2, 0.5])
        #expect(tensor("f16be")?.dtype == .float16)
        #expect(tensor("f16be")?.floats() == [1, -4])
        #expect(tensor("f32be")?.floats() == [1.5, -2, 3.25, 1e-3])
        #expect(tensor("f32be")?.shape == [2, 2])
        #expect(tensor("g.i32be")?.int64s() == [-7, 0, Int64(Int32.max)])
        #expect(tensor("g.h.scalar")?.shape == [] && tensor("g.h.scalar")?.int64s() == [-5])
        #expect(tensor("g.h.empty")?.shape == [0, 4] && tensor("g.h.empty")?.dtype == .float64)
        #expect(tensor("g.h.u8")?.int64s() == (0..<20).map { Int64(UInt8($0 * 13)) })
        let skipped = Dictionary(uniqueKeysWithValues: c.skipped.map { ($0.name, $0.reason) })
        #expect(Set(skipped.keys) == ["f16odd", "g.u16", "g.compound", "external"])
        #expect(skipped["g.u16"]?.contains("unsigned 16-bit") == true)
        #expect(skipped["g.compound"]?.contains("compound") == true)
        #expect(skipped["external"]?.contains("external") == true)
        #expect(c.tensors.count == 7)
        let attrs = Dictionary(uniqueKeysWithValues: c.attributes.map { ($0.name, $0.value) })
        #expect(attrs["attr.epoch"]?.intValue == 12)
        if case .list(let xs)? = attrs["attr.g.h.lr"], case .float(let a) = xs.first, case .float(let b) = xs.last {
            #expect(xs.count == 2 && a == 0.1 && b == 0.01)
        } else { Issue.record("attr.g.h.lr: \(String(describing: attrs["attr.g.h.lr"]))") }
        if case .bigInt(let s)? = attrs["attr.g.h.big"] { #expect(s == String(UInt64.max)) } else { Issue.record("attr.g.h.big") }
        #expect(attrs["attr.bf16.arch"]?.stringValue == "resnet")

        let bytes = try #require(FileManager.default.contents(atPath: path))
        bytes.withUnsafeBytes { #expect(HDF5Reader.looksLikeHDF5($0)) }
        #expect(bytes[0] != 0x89)
    }

    /// A reading process that crashes, never finishes, is not a reader or refuses the request
    /// becomes a BLError in the caller. Stand-in readers are small shell scripts.
    @Test func isolationTurnsCrashesAndHangsIntoErrors() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = TestData.fixture("parsers/tensors_flat.h5")
        func reader(_ name: String, _ body: String) throws -> String {
            let script = dir + "/" + name
            try ("#!/bin/sh\n" + body + "\n").write(toFile: script, atomically: true, encoding: .utf8)
            #expect(chmod(script, 0o755) == 0)
            return script
        }
        let size = Int(try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).intValue)
        func failure(_ executable: String, timeout: Double = 10, exitGrace: Double = 5) -> BLError? {
            do {
                _ = try HDF5Isolation.run(path: path, fileSize: size, timeout: timeout, executable: executable, exitGrace: exitGrace)
                return nil
            } catch { return error as? BLError }
        }
        // A real invalid access, as libhdf5 makes on some corrupt files.
        let crash = failure(try reader("crash", "kill -SEGV $$"))
        #expect(crash?.kind == .format && crash?.message.contains("signal 11 (segmentation fault)") == true, "\(String(describing: crash))")
        let start = ContinuousClock.now
        let hang = failure(try reader("hang", "exec sleep 60"), timeout: 1)
        #expect(hang?.message.contains("did not finish reading within 1 s") == true, "\(String(describing: hang))")
        #expect(ContinuousClock.now - start < .seconds(5))
        let foreign = failure(try reader("foreign", "echo 'hello, this is not a reader'"))
        #expect(foreign?.kind == .io && foreign?.message.contains("not a compatible HDF5 reader") == true, "\(String(describing: foreign))")
        // What swift-argument-parser does with an unknown option: exit status 64.
        let refusing = failure(try reader("refusing", "exit 64"))
        #expect(refusing?.message.contains("did not start as an HDF5 reader") == true, "\(String(describing: refusing))")
        let missing = failure(dir + "/absent")
        #expect(missing?.message.contains("cannot start the HDF5 reader") == true, "\(String(describing: missing))")
        // The child is not trusted: an answer larger than the file could justify is refused before
        // it is allocated (one tensor whose name claims 1 GiB)...
        let greedy = failure(try reader("greedy", #"printf 'BLH5WIRE2\n\000\001\000\000\000\000\000\000\000\000\000\000\100\000\000\000\000'; exec sleep 60"#))
        #expect(greedy?.kind == .format && greedy?.message.contains("bytes a file of \(size) bytes can hold") == true, "\(String(describing: greedy))")
        // ...and a reader that answers, then does not exit, is killed and reaped.
        let lingerStart = ContinuousClock.now
        let lingering = failure(try reader("lingering", #"printf 'BLH5WIRE2\n\001\006\000\000\000\000\000\000\000format\001\000\000\000\000\000\000\000m\000\000\000\000\000\000\000\000\000'; exec sleep 60"#),
                                exitGrace: 0.5)
        #expect(lingering?.kind == .format && lingering?.message == "m", "\(String(describing: lingering))")
        #expect(ContinuousClock.now - lingerStart < .seconds(5))
        // The reader really is another process: this build's blconvert-hdf5-reader.
        #expect(try HDF5Isolation.readerExecutable().hasSuffix("/blconvert-hdf5-reader"))
    }

    /// The answer format: errors and values of every kind arrive intact.
    @Test func wireRoundTrip() throws {
        func roundTrip(_ write: (inout HDF5Wire.Writer) throws -> Void) throws -> HDF5Wire.Reader {
            let dir = try TestData.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let fd = open(dir + "/wire", O_RDWR | O_CREAT | O_TRUNC, 0o600)
            try #require(fd >= 0)
            var w = HDF5Wire.Writer(fd: fd)
            try write(&w)
            w.flush()
            #expect(!w.failed)
            lseek(fd, 0, SEEK_SET)
            return HDF5Wire.Reader(fd: fd, deadline: MonotonicClock.seconds() + 10, budget: 1 << 20)
        }
        var errors = try roundTrip { $0.error(BLError(.unsupported, "m", location: "l")) }
        #expect(try errors.error() == BLError(.unsupported, "m", location: "l"))
        close(errors.fd)
        let sent = HDF5Contents(
            tensors: [("a.b", try Tensor.fromFloats([1, 2, 3, 4, 5, 6], shape: [2, 3])),
                      ("s", try Tensor.make(dtype: .int64, shape: []) { $0.storeBytes(of: Int64(-9), as: Int64.self) }),
                      ("e", try Tensor.make(dtype: .bool, shape: [0, 2]) { _ in })],
            skipped: [("x", "why")],
            attributes: [("attr.k", .list([.int(-1), .float(0.25), .bool(true), .string("é"), .bigInt("18446744073709551615"), .none])),
                         ("attr.kinds", .tuple([.bytes([0, 255]), .dict([(key: .string("a"), value: .tuple([.int(1)]))]), .list([])]))])
        var input = try roundTrip { $0.contents(sent) }
        defer { close(input.fd) }
        let got = try input.contents()
        #expect(got.tensors.map(\.name) == ["a.b", "s", "e"])
        #expect(got.tensors[0].tensor.floats() == [1, 2, 3, 4, 5, 6] && got.tensors[0].tensor.shape == [2, 3])
        #expect(got.tensors[1].tensor.int64s() == [-9] && got.tensors[1].tensor.shape == [])
        #expect(got.tensors[2].tensor.shape == [0, 2] && got.tensors[2].tensor.dtype == .bool)
        #expect(got.skipped.map(\.reason) == ["why"])
        #expect(got.attributes.first.map { "\($0.value.json.serialized())" } == #"[-1,0.25,true,"é",18446744073709551615,null]"#)
        // Every kind arrives as itself: bytes, tuples and dicts are not flattened or dropped.
        guard got.attributes.count == 2, case .tuple(let kinds) = got.attributes[1].value, kinds.count == 3,
              case .bytes(let b) = kinds[0], case .dict(let d) = kinds[1], case .list(let empty) = kinds[2],
              d.count == 1, case .string("a") = d[0].key, case .tuple(let inner) = d[0].value,
              inner.count == 1, case .int(1) = inner[0] else {
            Issue.record("value kinds changed on the wire: \(got.attributes)")
            return
        }
        #expect(b == [0, 255] && empty.isEmpty)
        // A value the wire has no tag for is refused by the writer: the answer is an error.
        var refused = try roundTrip { w in
            w.answer(.success(HDF5Contents(attributes: [("attr.t", .tensor(try Tensor.fromFloats([1], shape: [1])))])))
        }
        defer { close(refused.fd) }
        guard case .failure(let e) = try refused.answer() else { Issue.record("a tensor attribute was sent"); return }
        #expect(e.kind == .unsupported && e.message.contains("cannot be sent"), "\(e)")
        // The reading side's budget bounds the whole answer.
        var small = try roundTrip { $0.contents(sent) }
        defer { close(small.fd) }
        small = HDF5Wire.Reader(fd: small.fd, deadline: MonotonicClock.seconds() + 10, budget: 40)
        #expect(throws: HDF5Wire.Failure.self) { _ = try small.contents() }
    }

    /// libhdf5's automatic error printing is off whenever the reader calls into it.
    @Test func errorPrintingIsSilenced() {
        HDF5Library.withLock {
            var function: H5E_auto2_t? = nil
            var data: UnsafeMutableRawPointer? = nil
            #expect(H5Eget_auto2(blc_h5e_default(), &function, &data) >= 0)
            #expect(function == nil)
        }
    }

    /// A dataset declared far larger than the file could hold (never written: libhdf5 would
    /// hand back fill values) is refused before anything is allocated.
    @Test func oversizedDatasetIsRefused() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/huge.h5"
        try HDF5Library.withLock {
            let fid = H5Fcreate(path, blc_h5f_acc_trunc(), blc_h5p_default(), blc_h5p_default())
            try #require(fid >= 0)
            defer { H5Fclose(fid) }
            try Self.writeDataset(fid, "huge", blc_h5t_native_float(), dims: [1 << 20, 1 << 10], bytes: [])
        }
        do {
            _ = try HDF5Reader.read(path: path)
            Issue.record("4 GB dataset in a small file accepted")
        } catch let e as BLError {
            #expect(e.kind == .format && e.message.contains("4294967296 bytes") && e.location == "dataset 'huge'", "\(e)")
        }
    }

    @Test func sniffing() throws {
        let h5 = try #require(FileManager.default.contents(atPath: TestData.fixture("parsers/tensors_flat.h5")))
        h5.withUnsafeBytes { #expect(HDF5Reader.looksLikeHDF5($0)) }
        let st = try #require(FileManager.default.contents(atPath: TestData.fixture("mini-a2b4-f4x2/clip0.safetensors")))
        st.withUnsafeBytes { #expect(!HDF5Reader.looksLikeHDF5($0)) }
        [UInt8]().withUnsafeBytes { #expect(!HDF5Reader.looksLikeHDF5($0)) }
    }

    // MARK: hostile input

    @Test func corruptFilesFailCleanly() throws {
        let dir = try TestData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rejected = 0, accepted = 0
        func attempt(_ bytes: [UInt8], _ path: String, timeout: Double = 3) {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            do {
                _ = try HDF5Reader.read(path: path, timeout: timeout)
                accepted += 1
            } catch let e as BLError {
                #expect(e.file == path && e.kind == .format, "\(e)")
                rejected += 1
            } catch { Issue.record("non-BLError \(error)") }
        }
        // Mutations that crashed (SIGSEGV, depending on memory layout) or hung libhdf5 1.10.8
        // in-process, found by flipping bytes: read in the child, they may fail or not, never crash here.
        let known: [String: [(Int, UInt8)]] = [
            "tensors_flat.h5": [(2046, 82), (5526, 74), (8238, 60), (9384, 87), (9387, 19), (9390, 166), (9408, 127)],
            "tensors_nested.h5": [(3096, 199), (3105, 218), (9906, 80), (20985, 166)],
        ]
        var lcg: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 { lcg = lcg &* 6364136223846793005 &+ 1442695040888963407; return lcg >> 33 }
        for name in ["tensors_flat.h5", "tensors_nested.h5"] {
            let good = [UInt8](try #require(FileManager.default.contents(atPath: TestData.fixture("parsers/" + name))))
            let path = dir + "/" + name
            for (i, x) in known[name] ?? [] {
                var b = good
                b[i] ^= x
                attempt(b, path, timeout: 2)
            }
            for cut in Array(stride(from: 0, to: good.count, by: max(1, good.count / 60))) + [1, 7, 8, 100, good.count - 1] {
                attempt(Array(good[..<cut]), path)
            }
            // Flip bytes across the whole file, also inside headers and B-trees.
            for _ in 0..<150 {
                var b = good
                b[Int(next() % UInt64(good.count))] ^= UInt8(1 + next() % 255)
                attempt(b, path)
            }
        }
        // The truncated open failure carries libhdf5's explanation.
        let good = [UInt8](try #require(FileManager.default.contents(atPath: TestData.fixture("parsers/tensors_flat.h5"))))
        _ = FileManager.default.createFile(atPath: dir + "/cut.h5", contents: Data(good[..<1000]))
        do {
            _ = try HDF5Reader.read(path: dir + "/cut.h5")
            Issue.record("truncated file accepted")
        } catch let e as BLError {
            #expect(e.message.contains("libhdf5: "), "\(e)")
            #expect(e.message.count > 30)
        }
        _ = FileManager.default.createFile(atPath: dir + "/not.h5", contents: Data("plain text".utf8))
        #expect(throws: BLError.self) { try HDF5Reader.read(path: dir + "/not.h5") }
        #expect(throws: BLError.self) { try HDF5Reader.read(path: dir + "/missing.h5") }
        #expect(rejected > 0)
        print("corrupt HDF5 copies: \(rejected) rejected, \(accepted) read")
    }
}
