/// Facts about this build of blconvert.
public enum BLConvertInfo {
    /// The version, `major.minor.patch`, as packages record it (`blconvert_version` in `metadata.json`).
    public static let version = "0.2.0"
}
