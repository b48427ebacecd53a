/// How a video is read. The defaults are the reference extraction's
/// (`tools/extract_videos_st2st_v2.py`: short side 256) with limits that keep a hostile file
/// from taking unbounded memory or time.
package struct VideoOptions: Sendable, Equatable {
    /// The side the reference scales to 256: `scale=-1:S` when the coded width is greater than
    /// the coded height, else `scale=S:-1` (the script decides from ffprobe's width and height,
    /// which are the stored, unrotated ones).
    package var shortSide: Int = 256
    /// Decoder threads. Frame threading gives the same frames; 1 decodes on the calling thread.
    package var threads: Int = 1
    /// Largest decoded picture accepted, in pixels; each side is also at most `maxSide`.
    package var maxPixels: Int = 7680 * 4320
    package var maxSide: Int = 16384
    /// Most frames a video may give (as the extraction numbers them); more is refused, since
    /// timestamps alone can make ffmpeg's constant-rate output repeat a frame millions of times.
    package var maxFrames: Int = 1_000_000
    /// Wall-clock limit for one pass over one video, in seconds (nil: none).
    package var timeLimit: Double? = 600

    package init() {}
}

/// How the number of frames was obtained (`VideoFrames.count`).
package enum FrameCountMethod: String, Sendable, Equatable {
    /// From the container's packets, without decoding (VP9 and H.264 streams whose packets
    /// provably decode to one frame each, in timestamp order).
    case packets
    /// By decoding every frame (no scaling).
    case decoding
}
