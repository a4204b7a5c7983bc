// Opens a headless-gl context (as the gpu.js executor does) and reports which GL driver is really
// behind it: headless-gl/ANGLE only says "ANGLE", so read the libraries mapped into this process.
const fs = require("fs");
const path = require("path");
const root = process.argv[2] || process.cwd();
let gl;
try { gl = require(path.join(root, "node_modules/gl"))(64, 64, { preserveDrawingBuffer: true }); } catch (e) { console.log("GLPROBE result=error " + String(e.message).split("\n")[0]); process.exit(3); }
if (!gl) { console.log("GLPROBE result=no-context (headless-gl createContext returned null)"); process.exit(4); }
const ext = gl.getExtension("WEBGL_debug_renderer_info");
const unmasked = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : "(WEBGL_debug_renderer_info not exposed by headless-gl)";
// draw: clear to a colour and read it back, to prove the context renders
gl.clearColor(0.25, 0.5, 0.75, 1); gl.clear(gl.COLOR_BUFFER_BIT);
const px = new Uint8Array(4); gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
const libs = [...new Set(fs.readFileSync("/proc/self/maps", "utf8").split("\n").map((l) => l.split(/\s+/)[5]).filter((p) => p && /libGL|libEGL|_dri\.so|nvidia|libLLVM/i.test(p)))];
const driver = libs.some((p) => /libGLX_nvidia|libnvidia-glcore/.test(p)) ? "NVIDIA" : libs.some((p) => /swrast_dri|libLLVM|libgallium/.test(p)) ? "MESA-SOFTWARE(llvmpipe/softpipe)" : "UNKNOWN";
console.log(`GLPROBE result=ok driver=${driver} renderer="${gl.getParameter(gl.RENDERER)}" version="${gl.getParameter(gl.VERSION)}" unmasked="${unmasked}" maxTexture=${gl.getParameter(gl.MAX_TEXTURE_SIZE)} clearReadback=${[...px].join(",")}`);
console.log("GLPROBE libs: " + libs.join(" "));
