#!/usr/bin/env bash
# Regenerates the small test videos here and expected.json with the real ffmpeg 5.1 program
# (Debian 12's ffmpeg package): the videos, then what the reference extraction writes for each,
#   ffmpeg -i V -vf scale=-1:256 -f rawvideo -pix_fmt rgb24 -                     (rgb24_sha256)
#   ffmpeg -i V -vf scale=-1:256 -threads 1 -qmin 1 -qmax 1 -q:v 0 %05d.jpg       (jpeg_sha256)
# (scale=256:-1 when the stored width is not the larger side, as the reference script decides).
# Not run by the tests; they read the committed files.
set -euo pipefail
cd "$(dirname "$0")"
F="ffmpeg -hide_banner -loglevel error -y"
SRC="-f lavfi -i testsrc2=size=96x64:rate=12:duration=1.5"
X264="-c:v libx264 -preset veryfast -crf 30"
VP9="-c:v libvpx-vp9 -b:v 200k"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Display matrices: set on a stream copy (an encode would not keep the rotate tag in 5.1).
$F $SRC $X264 -pix_fmt yuv420p "$tmp/plain.mp4"
for a in 90 180 270; do $F -i "$tmp/plain.mp4" -c copy -metadata:s:v:0 rotate=$a rot$a.mp4; done
# Odd sizes; 4:4:4 (the JPEGs become yuvj444p) with a 3:2 sample aspect ratio (JFIF density).
$F -f lavfi -i testsrc2=size=97x63:rate=12:duration=1 $VP9 -pix_fmt yuv420p odd.webm
$F -f lavfi -i testsrc2=size=97x63:rate=12:duration=1 $X264 -pix_fmt yuv444p -vf setsar=3/2 odd444.mp4
# Irregular timestamps: gaps (ffmpeg's constant-rate output repeats frames) and frames closer
# than the output rate (it drops some).
$F $SRC $X264 -pix_fmt yuv420p -vf "setpts='(N+2*gte(N,5)+3*gte(N,9)-0.6*gte(N,12)*lt(N,15))/(12*TB)'" -fps_mode passthrough vfr.mp4
$F -f lavfi -i testsrc2=size=96x64:rate=24:duration=1 -c:v libvpx-vp9 -b:v 60k -vf "setpts='(N*(1+lt(N,8)))/(24*TB)'" -fps_mode passthrough -r 12 vfr-drop.webm
# Video starting 0.5 s after the audio: two streams, so plain CFR pads the start with copies of
# the first frame.
$F -f lavfi -i sine=frequency=440:duration=1 -c:a aac -b:a 16k "$tmp/a.m4a"
$F -itsoffset 0.5 -i "$tmp/plain.mp4" -i "$tmp/a.m4a" -c copy late.mkv
$F -itsoffset 0.5 -i "$tmp/plain.mp4" -i "$tmp/a.m4a" -c copy late.mp4
# Full range with BT.709 tags; 10-bit VP9; MJPEG already at the output size (no rescale for the
# JPEGs); interlaced (MBAFF) H.264; H.264 in Matroska.
$F $SRC $X264 -pix_fmt yuvj420p -colorspace bt709 -color_primaries bt709 -color_trc bt709 full709.mp4
$F -f lavfi -i testsrc2=size=96x64:rate=12:duration=1 $VP9 -pix_fmt yuv420p10le vp9-10bit.webm
$F -f lavfi -i testsrc2=size=341x256:rate=12:duration=0.17 -c:v mjpeg -q:v 31 mjpeg.avi
$F $SRC $X264 -pix_fmt yuv420p -flags +ildct+ilme -x264-params tff=1 mbaff.mp4
$F $SRC $X264 -pix_fmt yuv420p h264.mkv
# No video stream at all.
$F -f lavfi -i sine=frequency=440:duration=0.3 -c:a aac -b:a 32k audio.mp4

python3 - <<'PY'
import glob, hashlib, json, os, subprocess
out = {}
for v in sorted(glob.glob('*.mp4') + glob.glob('*.webm') + glob.glob('*.mkv') + glob.glob('*.avi')):
    probe = json.loads(subprocess.run(['ffprobe', '-v', 'error', '-select_streams', 'v', '-show_entries',
                                       'stream=width,height', '-of', 'json', v], capture_output=True, text=True).stdout)
    if not probe.get('streams'):
        continue
    w, h = probe['streams'][0]['width'], probe['streams'][0]['height']
    scale = 'scale=-1:256' if w > h else 'scale=256:-1'
    raw = subprocess.run(['ffmpeg', '-v', 'error', '-i', v, '-vf', scale, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
                         capture_output=True, check=True).stdout
    d = 'jpeg-' + v
    os.makedirs(d)
    subprocess.run(['ffmpeg', '-v', 'error', '-i', v, '-vf', scale, '-threads', '1', '-qmin', '1', '-qmax', '1',
                    '-q:v', '0', d + '/%05d.jpg'], check=True)
    jpegs = sorted(os.listdir(d))
    size = subprocess.run(['ffprobe', '-v', 'error', '-show_entries', 'stream=width,height', '-of', 'csv=p=0',
                           d + '/' + jpegs[0]], capture_output=True, text=True).stdout.strip().split(',')
    ow, oh = int(size[0]), int(size[1])
    n = ow * oh * 3
    out[v] = {
        'width': ow, 'height': oh,
        'rgb24_sha256': [hashlib.sha256(raw[i:i + n]).hexdigest() for i in range(0, len(raw), n)],
        'jpeg_sha256': [hashlib.sha256(open(d + '/' + f, 'rb').read()).hexdigest() for f in jpegs],
    }
    for f in jpegs:
        os.remove(d + '/' + f)
    os.rmdir(d)
json.dump({'ffmpeg': subprocess.run(['ffmpeg', '-version'], capture_output=True, text=True).stdout.split('\n')[0],
           'videos': out}, open("expected.json", "w"), separators=(",", ":"))
PY
