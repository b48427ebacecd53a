import BLCore

/// The globals a checkpoint may name: the same set `torch.load(weights_only=True)` accepts for the
/// objects blconvert understands. Each is a recorded meaning, never a Python callable.
enum AllowedGlobal: Equatable, Sendable {
    case orderedDict
    case rebuildTensor          // torch._utils._rebuild_tensor(storage, offset, size, stride)
    case rebuildTensorV2        // (storage, offset, size, stride, requires_grad, hooks[, metadata])
    case rebuildTensorV3        // (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
    case rebuildParameter       // (tensor, requires_grad, hooks)
    case rebuildParameterWithState  // (tensor, requires_grad, hooks, state)
    case rebuildFromTypeV2      // torch._tensor._rebuild_from_type_v2(func, type, args, state)
    case storageType(name: String, dtype: DType)
    case dtype(DType)
    case size
    case device
    case tensorClass(String)    // torch.Tensor, torch.nn.parameter.Parameter (only as a type tag)
    case codecsEncode
    case set
    case frozenSet
    case byteArray

    /// The allowlisted meaning of `module.name`, or nil when it must be refused.
    static func lookup(module: String, name: String) -> AllowedGlobal? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor_v3"): return .rebuildTensorV3
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("torch._tensor", "_rebuild_from_type_v2"): return .rebuildFromTypeV2
        case ("torch", "Size"): return .size
        case ("torch", "device"): return .device
        case ("torch", "Tensor"), ("torch._tensor", "Tensor"), ("torch.nn.parameter", "Parameter"):
            return .tensorClass("\(module).\(name)")
        case ("_codecs", "encode"): return .codecsEncode
        case ("builtins", "set"), ("__builtin__", "set"): return .set
        case ("builtins", "frozenset"), ("__builtin__", "frozenset"): return .frozenSet
        case ("builtins", "bytearray"), ("__builtin__", "bytearray"): return .byteArray
        case ("torch", "UntypedStorage"), ("torch.storage", "UntypedStorage"), ("torch.cuda", "UntypedStorage"):
            return .storageType(name: "\(module).\(name)", dtype: .uint8)
        case ("torch", _), ("torch.cuda", _):
            if name.hasSuffix("Storage"), let d = DType(storageClass: name) {
                return .storageType(name: "\(module).\(name)", dtype: d)
            }
            if module == "torch", let d = DType(torchName: name) { return .dtype(d) }
            return nil
        default:
            return nil
        }
    }

    /// What to add to the refusal of a global that is not a threat but a whole pickled model:
    /// `torch.save(model)` names the model's classes (`torch.nn.modules.conv.Conv2d`, the user's
    /// own `Net`), which a weights-only reader cannot and should not rebuild.
    static func refusalHint(module: String, name: String) -> String {
        let resave = "re-save the weights in Python with torch.save(model.state_dict(), 'weights.pth') and convert that file"
        if module == "torch.nn" || module.hasPrefix("torch.nn.modules") || module.hasPrefix("torch.nn.parallel") {
            return ": the file holds a whole pickled model (torch.save(model)), not a state dict; nothing in it was run. To convert it, \(resave)"
        }
        if let first = name.unicodeScalars.first, first.properties.isUppercase, !module.hasPrefix("torch"),
           !["builtins", "__builtin__", "posix", "nt", "os", "subprocess", "sys", "socket", "shutil"].contains(module) {
            return " (nothing was run; if the file was written by torch.save(model), a whole pickled model, \(resave))"
        }
        return ""
    }

    /// The name a value tree shows for this global when it appears as data.
    var typeName: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensor: return "torch._utils._rebuild_tensor"
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildTensorV3: return "torch._utils._rebuild_tensor_v3"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case .rebuildFromTypeV2: return "torch._tensor._rebuild_from_type_v2"
        case .storageType(let n, _): return n
        case .dtype: return "torch.dtype"
        case .size: return "torch.Size"
        case .device: return "torch.device"
        case .tensorClass(let n): return n
        case .codecsEncode: return "_codecs.encode"
        case .set: return "builtins.set"
        case .frozenSet: return "builtins.frozenset"
        case .byteArray: return "builtins.bytearray"
        }
    }
}
