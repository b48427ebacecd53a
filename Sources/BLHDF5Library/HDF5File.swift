import BLCore
import BLHDF5
import CHDF5

/// Reads an HDF5 file through libhdf5, in the reading process only (`HDF5Server`): the process
/// that asks never calls libhdf5.
package enum HDF5File {
    private struct Object {
        var path: String
        var type: H5O_type_t
        var attributeCount: Int
    }

    private final class Visit {
        var objects: [Object] = []
    }

    /// Every dataset and attribute of the file; call with `HDF5Library.withLock` held.
    package static func readLocked(path: String) throws -> HDF5Contents {
        let fid = try HDF5Library.check(H5Fopen(path, blc_h5f_acc_rdonly(), blc_h5p_default()), "cannot open as HDF5")
        defer { H5Fclose(fid) }
        var fileSize: hsize_t = 0
        try HDF5Library.check(status: H5Fget_filesize(fid, &fileSize), "cannot get the file size")
        // One budget for all datasets together: many small corrupt headers cannot add up to more.
        var budget = HDF5Reader.byteLimit(fileSize: Int(clamping: fileSize))

        let visit = Visit()
        let visitor: H5O_iterate_t = { _, name, info, data in
            guard let name, let info, let data else { return -1 }
            let v = Unmanaged<Visit>.fromOpaque(data).takeUnretainedValue()
            v.objects.append(Object(path: String(cString: name), type: info.pointee.type,
                                    attributeCount: Int(clamping: info.pointee.num_attrs)))
            return 0
        }
        let status = H5Ovisit2(fid, H5_INDEX_NAME, H5_ITER_INC, visitor, Unmanaged.passUnretained(visit).toOpaque(),
                               blc_h5o_info_basic_attrs())
        withExtendedLifetime(visit) {}
        try HDF5Library.check(status: status, "cannot walk the groups")

        var out = HDF5Contents()
        // Soft and external links are not followed (an external link names another file): they
        // are listed as skipped rather than silently dropped.
        out.skipped += try unfollowedLinks(fid)
        var names = Set<[UInt8]>()
        for object in visit.objects {
            let dotted = object.path == "." ? "" : object.path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: ".")
            if object.attributeCount > 0 {
                try readAttributes(fid, objectPath: object.path, dotted: dotted, count: object.attributeCount, into: &out)
            }
            guard object.type == H5O_TYPE_DATASET else { continue }
            let location = "dataset '\(object.path)'"
            guard names.insert(Array(dotted.utf8)).inserted else {
                out.skipped.append((dotted, "another dataset already has this dotted name"))
                continue
            }
            switch try readDataset(fid, path: object.path, budget: &budget, location: location) {
            case .tensor(let t): out.tensors.append((dotted, t))
            case .skipped(let reason): out.skipped.append((dotted, reason))
            }
        }
        return out
    }

    private final class Links {
        var found: [(name: String, type: H5L_type_t)] = []
    }

    /// Soft, external and user-defined links anywhere in the file, with what they point to.
    private static func unfollowedLinks(_ fid: hid_t) throws -> [(name: String, reason: String)] {
        let links = Links()
        let visitor: H5L_iterate_t = { _, name, info, data in
            guard let name, let info, let data else { return -1 }
            let box = Unmanaged<Links>.fromOpaque(data).takeUnretainedValue()
            if info.pointee.type != H5L_TYPE_HARD { box.found.append((String(cString: name), info.pointee.type)) }
            return 0
        }
        let status = H5Lvisit(fid, H5_INDEX_NAME, H5_ITER_INC, visitor, Unmanaged.passUnretained(links).toOpaque())
        withExtendedLifetime(links) {}
        try HDF5Library.check(status: status, "cannot walk the links")
        return links.found.prefix(10_000).map { link in
            let dotted = link.name.split(separator: "/", omittingEmptySubsequences: true).joined(separator: ".")
            var info = H5L_info_t()
            var target = ""
            if H5Lget_info(fid, link.name, &info, blc_h5p_default()) >= 0 {
                let size = Int(info.u.val_size)
                if size > 0, size <= 1 << 16 {
                    var buffer = [UInt8](repeating: 0, count: size)
                    if H5Lget_val(fid, link.name, &buffer, size, blc_h5p_default()) >= 0 {
                        if link.type == H5L_TYPE_EXTERNAL {
                            var file: UnsafePointer<CChar>? = nil, object: UnsafePointer<CChar>? = nil
                            var flags: UInt32 = 0
                            if H5Lunpack_elink_val(&buffer, size, &flags, &file, &object) >= 0, let file, let object {
                                target = "\(String(cString: file)):\(String(cString: object))"
                            }
                        } else {
                            target = String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
                        }
                    }
                }
            }
            _ = H5Eclear2(blc_h5e_default())
            let kind = link.type == H5L_TYPE_SOFT ? "soft link" : link.type == H5L_TYPE_EXTERNAL ? "external link" : "user-defined link"
            return (dotted, "\(kind)\(target.isEmpty ? "" : " to \(target)"), not followed")
        }
    }

    private enum DatasetResult {
        case tensor(Tensor)
        case skipped(String)
    }

    private static func readDataset(_ fid: hid_t, path: String, budget: inout Int, location: String) throws -> DatasetResult {
        let did = try HDF5Library.check(H5Dopen2(fid, path, blc_h5p_default()), "cannot open the dataset", location: location)
        defer { H5Dclose(did) }

        // Raw data kept outside this file (external storage, virtual datasets) is never followed.
        let dcpl = try HDF5Library.check(H5Dget_create_plist(did), "cannot read the creation properties", location: location)
        defer { H5Pclose(dcpl) }
        let layout = H5Pget_layout(dcpl)
        if layout == H5D_VIRTUAL { return .skipped("virtual dataset (data lives in other files)") }
        if H5Pget_external_count(dcpl) > 0 { return .skipped("raw data stored in an external file") }

        let tid = try HDF5Library.check(H5Dget_type(did), "cannot read the datatype", location: location)
        defer { H5Tclose(tid) }
        let plan = try elementPlan(tid, location: location)
        guard case .read(let dtype, let memType, let ownsMemType, let isBool) = plan else {
            if case .skip(let reason) = plan { return .skipped(reason) }
            return .skipped("unreadable datatype")
        }
        defer { if ownsMemType { H5Tclose(memType) } }

        guard let shape = try datasetShape(did, location: location) else {
            return .skipped("null dataspace (no elements)")
        }
        var count = 1
        for d in shape {
            let (m, o) = count.multipliedReportingOverflow(by: d)
            if o { throw BLError(.format, "dataset shape \(shape) overflows", location: location) }
            count = m
        }
        let (bytes, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
        if o || bytes > budget {
            throw BLError(.format, "dataset shape \(shape) of \(dtype.torchName) needs \(o ? "more than Int.max" : String(bytes)) bytes, more than a file of this size can hold (\(budget) bytes left of 1100 x file size + 1 MB)",
                          location: location)
        }
        // What the file stores for this dataset bounds what it can honestly expand to: a chunked
        // dataset that was never written (0 bytes on disk, every element the fill value) or a
        // corrupt chunk index must not claim gigabytes against the whole file's budget.
        let stored = Int(clamping: H5Dget_storage_size(did))
        let storedLimit = ExpansionBudget.decompressedLimit(fileSize: stored)
        if bytes > storedLimit {
            throw BLError(.format, "dataset shape \(shape) of \(dtype.torchName) declares \(bytes) bytes but the file stores \(stored) bytes of its data (\(stored == 0 ? "never written: only fill values" : "more than decompression can expand")); limit \(storedLimit) bytes",
                          location: location)
        }
        budget -= bytes
        let storage = try ByteStorage.allocate(count: bytes) { buffer in
            guard count > 0, let base = buffer.baseAddress else { return }
            try HDF5Library.check(status: H5Dread(did, memType, blc_h5s_all(), blc_h5s_all(), blc_h5p_default(), base),
                                  "cannot read the data", location: location)
            if isBool {
                for i in 0..<buffer.count where buffer[i] > 1 { buffer[i] = 1 }
            }
        }
        do {
            return .tensor(try Tensor(dtype: dtype, shape: shape, storage: storage))
        } catch let e as BLError {
            throw e.at(location)
        }
    }

    /// Dimensions of a dataset ([] for a scalar), or nil for a null dataspace.
    private static func datasetShape(_ did: hid_t, location: String) throws -> [Int]? {
        let sid = try HDF5Library.check(H5Dget_space(did), "cannot read the dataspace", location: location)
        defer { H5Sclose(sid) }
        return try spaceShape(sid, location: location)
    }

    static func spaceShape(_ sid: hid_t, location: String) throws -> [Int]? {
        switch H5Sget_simple_extent_type(sid) {
        case H5S_NULL: return nil
        case H5S_SCALAR: return []
        case H5S_SIMPLE:
            let rank = H5Sget_simple_extent_ndims(sid)
            guard rank >= 0, rank <= 32 else {
                throw HDF5Library.failure("dataspace rank \(rank) is invalid", location: location)
            }
            var dims = [hsize_t](repeating: 0, count: Int(rank))
            if rank > 0 {
                try HDF5Library.check(status: H5Sget_simple_extent_dims(sid, &dims, nil), "cannot read the dimensions", location: location)
            }
            // Bounded even when empty, so strides computed from the shape cannot wrap.
            var extent: UInt64 = 1
            for d in dims {
                let (m, o) = extent.multipliedReportingOverflow(by: max(d, 1))
                if o || m > 1 << 48 {
                    throw BLError(.format, "dataspace dimensions \(dims) are too large", location: location)
                }
                extent = m
            }
            return dims.map { Int($0) }
        default:
            throw HDF5Library.failure("cannot read the dataspace kind", location: location)
        }
    }

    enum ElementPlan {
        /// Read with `memType` into `dtype` elements; `ownsMemType` when the reader must close it.
        case read(DType, memType: hid_t, ownsMemType: Bool, isBool: Bool)
        case skip(String)
    }

    /// How to read elements of file type `tid`, or why not.
    static func elementPlan(_ tid: hid_t, location: String) throws -> ElementPlan {
        let cls = H5Tget_class(tid)
        let size = H5Tget_size(tid)
        switch cls {
        case H5T_INTEGER:
            let signed = H5Tget_sign(tid) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): return .read(.int8, memType: blc_h5t_native_int8(), ownsMemType: false, isBool: false)
            case (1, false): return .read(.uint8, memType: blc_h5t_native_uint8(), ownsMemType: false, isBool: false)
            case (2, true): return .read(.int16, memType: blc_h5t_native_int16(), ownsMemType: false, isBool: false)
            case (4, true): return .read(.int32, memType: blc_h5t_native_int32(), ownsMemType: false, isBool: false)
            case (8, true): return .read(.int64, memType: blc_h5t_native_int64(), ownsMemType: false, isBool: false)
            default: return .skip("\(signed ? "signed" : "unsigned") \(size * 8)-bit integers have no supported dtype")
            }
        case H5T_FLOAT:
            switch size {
            case 4: return .read(.float32, memType: blc_h5t_native_float(), ownsMemType: false, isBool: false)
            case 8: return .read(.float64, memType: blc_h5t_native_double(), ownsMemType: false, isBool: false)
            case 2:
                var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
                try HDF5Library.check(status: H5Tget_fields(tid, &spos, &epos, &esize, &mpos, &msize),
                                      "cannot read the float layout", location: location)
                let bias = H5Tget_ebias(tid)
                let layout = (spos, epos, esize, mpos, msize, bias)
                let dtype: DType
                if layout == (15, 10, 5, 0, 10, 15) { dtype = .float16 }
                else if layout == (15, 7, 8, 0, 7, 127) { dtype = .bfloat16 }
                else {
                    return .skip("16-bit float with sign at bit \(spos), \(esize) exponent bits at \(epos) (bias \(bias)), \(msize) mantissa bits is neither IEEE half nor bfloat16")
                }
                guard H5Tget_norm(tid) == H5T_NORM_IMPLIED, H5Tget_precision(tid) == 16, H5Tget_offset(tid) == 0 else {
                    return .skip("16-bit float without an implied leading mantissa bit or with padding bits")
                }
                // Same layout in little-endian order: libhdf5 only swaps bytes when needed.
                let mem = try HDF5Library.check(H5Tcopy(tid), "cannot copy the datatype", location: location)
                if H5Tset_order(mem, H5T_ORDER_LE) < 0 {
                    let e = HDF5Library.failure("cannot set the byte order", location: location)
                    H5Tclose(mem)
                    throw e
                }
                return .read(dtype, memType: mem, ownsMemType: true, isBool: false)
            default:
                return .skip("\(size * 8)-bit floats have no supported dtype")
            }
        case H5T_ENUM:
            if try isBoolEnum(tid, location: location) {
                let mem = try HDF5Library.check(H5Tcopy(tid), "cannot copy the datatype", location: location)
                return .read(.bool, memType: mem, ownsMemType: true, isBool: true)
            }
            return .skip("enumeration that is not h5py's boolean (int8 FALSE=0, TRUE=1)")
        case H5T_STRING: return .skip("string data, not a tensor")
        case H5T_COMPOUND: return .skip("compound datatype, not a tensor")
        case H5T_REFERENCE: return .skip("object or region references, not a tensor")
        case H5T_OPAQUE: return .skip("opaque datatype, not a tensor")
        case H5T_VLEN: return .skip("variable-length sequences, not a tensor")
        case H5T_ARRAY: return .skip("array datatype elements are not supported")
        case H5T_BITFIELD: return .skip("bitfield datatype is not supported")
        case H5T_TIME: return .skip("time datatype is not supported")
        default:
            throw HDF5Library.failure("cannot read the datatype class", location: location)
        }
    }

    /// h5py's numpy bool: an enum over int8 with exactly the members FALSE = 0 and TRUE = 1.
    static func isBoolEnum(_ tid: hid_t, location: String) throws -> Bool {
        guard H5Tget_size(tid) == 1, H5Tget_nmembers(tid) == 2 else { return false }
        var members: [String: Int8] = [:]
        for i: UInt32 in 0..<2 {
            guard let cname = H5Tget_member_name(tid, i) else {
                throw HDF5Library.failure("cannot read enumeration member \(i)", location: location)
            }
            let name = String(cString: cname)
            H5free_memory(cname)
            var value: Int8 = 0
            try HDF5Library.check(status: H5Tget_member_value(tid, i, &value), "cannot read enumeration value \(i)", location: location)
            members[name] = value
        }
        return members == ["FALSE": 0, "TRUE": 1]
    }
}
