/*
 * handx web viewer: browse clips, play both hands in 3D, read their texts and motion-code events.
 *
 * Plain JavaScript and a 2D canvas with its own perspective projection: no framework, no WebGL library,
 * nothing fetched from outside the server (which sends a "default-src 'self'" policy). The server
 * (handx/viz/viewer.py) provides:
 *   /api/meta                     what is served and the skeleton (bones come from handx.skeleton)
 *   /api/clips?q=&offset=&limit=  a page of clip summaries matching a search
 *   /api/clip?id=&file=           one clip: motion (base64 float32, (T, 2, 21, 3) metres), texts, codes
 *   POST /api/generate            (handx view --generate) three texts, optional clip and mode → motion
 *
 * Coordinates are the canonical frame of handx (reference §1.2): +x right, +y forward, +z up, metres;
 * hand 0 is the left hand. window.handxViewer exposes the viewer's state to tests and to the console.
 *
 * The 3D view draws a scene of one or two motions: the open clip ("data") and, after Generate, the
 * generated motion, placed beside the clip (or on it) and played in step with it.
 */
"use strict";

(function () {
  // ---------------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------------

  /** Public, read-mostly state (tests wait on `ready` and read the rest). */
  const state = {
    ready: false,        // true once the first list page (and first clip, if any) is shown
    error: null,         // last error message shown to the user, or null
    query: "",           // search text of the list on screen
    listLoading: false,  // a list request is in flight
    listed: 0,           // clips in the list on screen
    total: 0,            // clips matching the search
    clipId: null,        // clip on screen
    file: null,          // its file (directory of clip files) or null
    loading: false,      // a clip request is in flight
    frames: 0,           // frames of the clip on screen
    frame: 0,            // frame on screen (0-based)
    playing: false,
    speed: 1,
    variant: 0,          // selected text variant (highlighted in all three branches)
    generating: false,   // a generate request is in flight
    generated: null,     // the generated motion on screen: {frames, seconds, mode, clipId, file, seed, steps}
    drawn: {},           // per motion in the last picture ("data", "generated"): {frame, offset, wrists}, the
                         // wrists ([left, right], [x, y, z] metres) in the motion's own coordinates
  };
  window.handxViewer = state;

  const PAGE = 200;                 // clips per list request
  const FOV = (40 * Math.PI) / 180; // vertical field of view of the 3D camera
  const NEAR = 0.01;                // metres: points closer to the camera than this are not drawn
  const JOINTS = 21;

  // Finger colours: cool tones for the left hand, warm tones for the right, one shade per finger.
  const COLOURS = {
    left: { thumb: "#4dabf7", index: "#339af0", middle: "#22b8cf", ring: "#20c997", pinky: "#9775fa",
            palm: "#74c0fc" },
    right: { thumb: "#ffa94d", index: "#ff922b", middle: "#fcc419", ring: "#ff6b6b", pinky: "#f783ac",
             palm: "#ffc078" },
  };
  const WRIST_TRAIL = { left: "rgba(77, 171, 247, 0.45)", right: "rgba(255, 146, 43, 0.45)" };
  const BESIDE_GAP = 0.1; // metres between the clip's box and the generated motion's box

  let meta = null;      // /api/meta
  let skeleton = null;  // bones, finger of each bone and joint, hand names (from /api/meta)
  let clip = null;      // the clip on screen: payload + decoded motion + bounds
  let generated = null; // the generated motion on screen: answer + decoded motion + bounds
  let scene = null;     // what the 3D view draws: motions placed side by side, their bounds, the floor grid
  let listSeq = 0;      // increases with every list request, so stale answers are ignored
  let clipSeq = 0;      // same for clip requests
  let listOffset = 0;   // next offset to request for "Show more"

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"), sourceInfo: $("source-info"), search: $("search"), listInfo: $("list-info"),
    list: $("clip-list"), more: $("more"), canvas: $("view"), title: $("clip-title"), legend: $("legend"),
    play: $("play"), scrub: $("scrub"), counter: $("frame-counter"), speed: $("speed"), trails: $("trails"),
    resetView: $("reset-view"), timeline: $("timeline"), timelineInfo: $("timeline-info"),
    changesOnly: $("changes-only"),
    texts: { left: $("texts-left"), right: $("texts-right"), two_hands_relation: $("texts-relation") },
    gen: {
      panel: $("generate"), model: $("gen-model"), status: $("gen-status"), clip: $("gen-clip"),
      mode: $("gen-mode"), seed: $("gen-seed"), steps: $("gen-steps"), overlay: $("gen-overlay"),
      fill: $("gen-fill"), hide: $("gen-hide"), run: $("gen-run"),
      texts: { left: $("gen-left"), right: $("gen-right"), relation: $("gen-relation") },
    },
  };
  const ctx = el.canvas.getContext("2d");

  // ---------------------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------------------

  /** Create an element with a class and text (text always goes through textContent, never HTML). */
  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function showStatus(message, isError) {
    el.status.textContent = message || "";
    el.status.classList.toggle("error", Boolean(isError));
    if (isError) state.error = message;
  }

  /** Report a failure on the page and in the console (a real failure, which tests must see). */
  function fail(what, err) {
    const message = `${what}: ${err && err.message ? err.message : err}`;
    showStatus(message, true);
    console.error(`handx viewer: ${message}`);
  }

  /** GET a JSON endpoint; a non-2xx answer becomes an Error with the server's message. */
  function getJSON(url) {
    return requestJSON(url, { headers: { Accept: "application/json" } });
  }

  /** POST a JSON body to an endpoint; errors as for getJSON. */
  function postJSON(url, body) {
    return requestJSON(url, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function requestJSON(url, options) {
    const response = await fetch(url, options);
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      body = null;
    }
    if (!response.ok) {
      throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
    }
    return body;
  }

  function clamp(x, lo, hi) {
    return Math.min(hi, Math.max(lo, x));
  }

  /** Base64 of little-endian float32 values → Float32Array (DataView: correct on any byte order). */
  function decodeFloat32(base64) {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const view = new DataView(bytes.buffer);
    const out = new Float32Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Clip list and search
  // ---------------------------------------------------------------------------------------------------

  /** Load the first page for the search box's text (reset) or the next page (append). */
  async function loadList(reset) {
    const query = el.search.value.trim();
    const seq = ++listSeq;
    if (reset) listOffset = 0;
    state.listLoading = true;
    try {
      const params = new URLSearchParams({ q: query, offset: String(listOffset), limit: String(PAGE) });
      const page = await getJSON(`/api/clips?${params}`);
      if (seq !== listSeq) return; // a newer request superseded this one
      if (reset) el.list.replaceChildren();
      for (const item of page.items) el.list.appendChild(listItem(item));
      listOffset = page.offset + page.items.length;
      state.query = query;
      state.total = page.total;
      state.listed = el.list.children.length;
      el.listInfo.textContent = query
        ? `${page.total} of ${page.count} clips match`
        : `${page.count} clips`;
      el.more.hidden = listOffset >= page.total;
      el.more.textContent = `Show more (${page.total - listOffset} left)`;
      markSelected();
    } catch (err) {
      if (seq === listSeq) fail("cannot list clips", err);
    } finally {
      if (seq === listSeq) state.listLoading = false;
    }
  }

  /** One entry of the list: id, file, first left/right/relation texts; click to open. */
  function listItem(item) {
    const li = make("li");
    li.dataset.id = item.id;
    li.dataset.file = item.file || "";
    const button = make("button", "clip-item");
    button.type = "button";
    button.appendChild(make("div", "clip-id", item.id));
    if (item.file) button.appendChild(make("div", "clip-file", item.file));
    const snippet = [item.left, item.right, item.relation].filter(Boolean).join(" · ");
    button.appendChild(make("div", "clip-text", snippet || "(no text)"));
    button.title = snippet;
    button.addEventListener("click", () => loadClip(item.id, item.file));
    li.appendChild(button);
    return li;
  }

  function markSelected() {
    for (const li of el.list.children) {
      const selected = li.dataset.id === state.clipId && (li.dataset.file || null) === (state.file || null);
      li.classList.toggle("selected", selected);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Loading a clip
  // ---------------------------------------------------------------------------------------------------

  async function loadClip(id, file) {
    const seq = ++clipSeq;
    state.loading = true;
    showStatus(`loading ${id}…`, false);
    try {
      const params = new URLSearchParams({ id });
      if (file) params.set("file", file);
      const payload = await getJSON(`/api/clip?${params}`);
      if (seq !== clipSeq) return;
      showClip(payload);
      history.replaceState(null, "", `#${params}`);
      showStatus(payload.codes_error ? `motion codes unavailable: ${payload.codes_error}` : "", false);
    } catch (err) {
      if (seq === clipSeq) fail(`cannot load clip ${id}`, err);
    } finally {
      if (seq === clipSeq) state.loading = false;
    }
  }

  /**
   * A motion answer (clip payload or generate answer: base64 float32 (T, 2, 21, 3) metres) → its values and
   * bounding box over all frames.
   */
  function decodeMotion(answer) {
    const motion = decodeFloat32(answer.motion); // (T * 2 * 21 * 3)
    const frames = answer.frames;
    if (motion.length !== frames * 2 * JOINTS * 3) {
      throw new Error(`motion has ${motion.length} values, expected ${frames} × 2 × 21 × 3`);
    }
    const lo = [Infinity, Infinity, Infinity];
    const hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < motion.length; i += 3) {
      for (let a = 0; a < 3; a++) {
        lo[a] = Math.min(lo[a], motion[i + a]);
        hi[a] = Math.max(hi[a], motion[i + a]);
      }
    }
    return { motion, frames, fps: answer.fps || 30, lo, hi };
  }

  /** Decode a clip payload, derive what drawing needs, and show it everywhere. */
  function showClip(payload) {
    clip = { payload, ...decodeMotion(payload) };
    const frames = clip.frames;
    state.clipId = payload.id;
    state.file = payload.file || null;
    state.frames = frames;
    state.variant = 0;
    el.title.textContent = payload.file ? `${payload.file} · ${payload.id}` : payload.id;
    el.gen.clip.options[0].textContent = `open clip (${payload.id})`;
    layoutScene();
    resetCamera();
    showTexts(payload.texts, payload.text_kind);
    buildTimeline(payload.timeline, frames);
    markSelected();
    playhead = 0;
    setFrame(0);
    draw();
  }

  // ---------------------------------------------------------------------------------------------------
  // Scene: the clip and the generated motion side by side
  // ---------------------------------------------------------------------------------------------------

  /**
   * Place what is on screen: the clip where it is; the generated motion beside it (+x of the clip's box,
   * centred on it in y, on the same floor) or, with "on the clip" ticked, where it was generated (with a
   * condition, the condition clip's frame, so kept joints coincide). Bounds, camera target and grid follow.
   */
  function layoutScene() {
    const actors = [];
    if (clip) actors.push({ name: "data", label: "clip", data: clip, offset: [0, 0, 0] });
    if (generated) {
      let offset = [0, 0, 0];
      if (clip && !el.gen.overlay.checked) {
        offset = [
          clip.hi[0] - generated.lo[0] + BESIDE_GAP,
          (clip.lo[1] + clip.hi[1]) / 2 - (generated.lo[1] + generated.hi[1]) / 2,
          clip.lo[2] - generated.lo[2],
        ];
      }
      actors.push({ name: "generated", label: "generated", data: generated, offset });
    }
    if (!actors.length) {
      scene = null;
      return;
    }
    const lo = [0, 1, 2].map((a) => Math.min(...actors.map((x) => x.data.lo[a] + x.offset[a])));
    const hi = [0, 1, 2].map((a) => Math.max(...actors.map((x) => x.data.hi[a] + x.offset[a])));
    scene = {
      actors, lo, hi,
      frames: Math.max(...actors.map((x) => x.data.frames)),
      fps: actors[0].data.fps,
      centre: [0, 1, 2].map((a) => (lo[a] + hi[a]) / 2),
      radius: Math.max(0.08, 0.5 * Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])),
      grid: floorGrid(lo, hi),
    };
    el.scrub.max = String(Math.max(0, scene.frames - 1));
  }

  // ---------------------------------------------------------------------------------------------------
  // Texts: three branches with all their variants
  // ---------------------------------------------------------------------------------------------------

  function showTexts(texts, kind) {
    for (const [branch, list] of Object.entries(el.texts)) {
      list.replaceChildren();
      const variants = (texts && texts[branch]) || [];
      if (!variants.length) list.appendChild(make("li", "empty", "no text"));
      variants.forEach((text, k) => {
        const li = make("li", null, text);
        li.dataset.variant = String(k);
        li.addEventListener("click", () => selectVariant(k));
        list.appendChild(li);
      });
    }
    for (const span of document.querySelectorAll(".text-kind")) {
      span.textContent = kind === "segments" ? "(one per segment)" : "";
    }
    selectVariant(0);
  }

  function selectVariant(k) {
    state.variant = k;
    for (const list of Object.values(el.texts)) {
      for (const li of list.children) li.classList.toggle("selected", li.dataset.variant === String(k));
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Motion-code timeline: one row per signal, events as labelled bars, a playhead at the current frame
  // ---------------------------------------------------------------------------------------------------

  let timelineBars = [];  // [{node, start, end}] to mark the events under the playhead
  let timelinePlayhead = null;

  function buildTimeline(rows, frames) {
    el.timeline.replaceChildren();
    timelineBars = [];
    timelinePlayhead = null;
    const shown = el.changesOnly.checked ? rows.filter((r) => r.changes) : rows;
    el.timelineInfo.textContent = `${shown.length} of ${rows.length} signals · ${frames} frames`;
    if (!rows.length) {
      el.timeline.appendChild(make("div", "tl-empty", "no motion codes for this clip"));
      return;
    }
    const body = make("div", "tl-body");

    // Axis: frame numbers, at most about a dozen ticks.
    const axis = make("div", "tl-axis");
    axis.appendChild(make("div", "tl-label small muted", "frame"));
    const ticks = make("div", "tl-ticks");
    const step = [5, 10, 15, 30, 60, 150, 300, 600, 1500, 3000].find((s) => frames / s <= 12) || 6000;
    for (let f = 0; f < frames; f += step) {
      const tick = make("div", "tl-tick", String(f));
      tick.style.left = `${(100 * f) / frames}%`;
      ticks.appendChild(tick);
    }
    axis.appendChild(ticks);
    body.appendChild(axis);

    let group = null;
    for (const row of shown) {
      if (row.group !== group) {
        group = row.group;
        body.appendChild(make("div", "tl-group", group));
      }
      const line = make("div", "tl-row");
      const label = make("div", "tl-label", `${row.family} · ${row.signal}`);
      label.title = `${row.group} · ${row.family} · ${row.signal}`;
      line.appendChild(label);
      const track = make("div", "tl-track");
      for (const ev of row.events) {
        const bar = make("div", `tl-bar kind-${ev.kind}`, ev.label);
        bar.style.left = `${(100 * ev.start) / frames}%`;
        bar.style.width = `${(100 * Math.max(ev.end - ev.start, 0.5)) / frames}%`;
        bar.title = `frames ${ev.start}–${ev.end - 1}: ${ev.label}`;
        track.appendChild(bar);
        timelineBars.push({ node: bar, start: ev.start, end: ev.end });
      }
      // Clicking a track moves the playhead there.
      track.addEventListener("click", (event) => {
        const box = track.getBoundingClientRect();
        pause();
        setFrame(Math.floor((frames * (event.clientX - box.left)) / box.width));
      });
      line.appendChild(track);
      body.appendChild(line);
    }
    timelinePlayhead = make("div", "tl-playhead");
    body.appendChild(timelinePlayhead);
    el.timeline.appendChild(body);
  }

  function updateTimeline(frame, frames) {
    if (timelinePlayhead) {
      const f = (frame + 0.5) / Math.max(frames, 1);
      timelinePlayhead.style.left = `calc(var(--label-w) + (100% - var(--label-w)) * ${f})`;
    }
    for (const bar of timelineBars) {
      bar.node.classList.toggle("active", bar.start <= frame && frame < bar.end);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Playback
  // ---------------------------------------------------------------------------------------------------

  let playhead = 0;     // fractional frame while playing
  let lastTick = null;  // time of the previous animation frame (ms)

  /** Show frame f (clamped) in the canvas, slider, counter and timeline. */
  function setFrame(f) {
    if (!scene) return;
    const frame = clamp(Math.round(f), 0, scene.frames - 1);
    if (!state.playing) playhead = frame;
    state.frame = frame;
    el.scrub.value = String(frame);
    el.counter.textContent =
      `frame ${frame + 1} / ${scene.frames} · ${(frame / scene.fps).toFixed(2)} s`;
    if (clip) updateTimeline(frame, clip.frames);
    draw();
  }

  function play() {
    if (!scene || state.playing) return;
    if (state.frame >= scene.frames - 1) playhead = 0; // at the end: start over
    else playhead = state.frame;
    state.playing = true;
    lastTick = null;
    el.play.textContent = "Pause";
    el.play.setAttribute("aria-pressed", "true");
  }

  function pause() {
    state.playing = false;
    el.play.textContent = "Play";
    el.play.setAttribute("aria-pressed", "false");
  }

  function togglePlay() {
    if (state.playing) pause();
    else play();
  }

  /** Animation loop: advance the playhead by elapsed time × fps × speed, looping at the end. */
  function tick(now) {
    if (state.playing && scene) {
      if (lastTick !== null) {
        const dt = Math.min((now - lastTick) / 1000, 0.25); // seconds; a hidden tab does not jump ahead
        playhead = (playhead + dt * scene.fps * state.speed) % scene.frames;
        const frame = Math.floor(playhead);
        if (frame !== state.frame) setFrame(frame);
      }
      lastTick = now;
    }
    requestAnimationFrame(tick);
  }

  // ---------------------------------------------------------------------------------------------------
  // 3D: orbit camera and perspective projection onto the canvas
  // ---------------------------------------------------------------------------------------------------

  // Camera on a sphere around the scene's centre. yaw 0 looks along +y (from behind the subject, so the
  // left hand is on the left of the screen); pitch > 0 looks down.
  const camera = { yaw: 0, pitch: 0.6, distance: 1, target: [0, 0, 0] };
  let view = null; // derived each draw: position, axes, focal length, screen centre

  function resetCamera() {
    camera.yaw = 0;
    camera.pitch = 0.6;
    camera.target = scene ? scene.centre.slice() : [0, 0, 0];
    camera.distance = scene ? (0.9 * scene.radius) / Math.sin(FOV / 2) : 1;
  }

  /** Camera basis: forward f, right r = f × z, up u = r × f (all unit vectors). */
  function cameraFrame(width, height) {
    const cp = Math.cos(camera.pitch);
    const f = [Math.sin(camera.yaw) * cp, Math.cos(camera.yaw) * cp, -Math.sin(camera.pitch)];
    const r = [Math.cos(camera.yaw), -Math.sin(camera.yaw), 0];
    const u = [r[1] * f[2] - r[2] * f[1], r[2] * f[0] - r[0] * f[2], r[0] * f[1] - r[1] * f[0]];
    const t = camera.target;
    const d = camera.distance;
    return {
      f, r, u,
      eye: [t[0] - d * f[0], t[1] - d * f[1], t[2] - d * f[2]],
      focal: (0.5 * height) / Math.tan(FOV / 2),
      cx: width / 2,
      cy: height / 2,
    };
  }

  /** World point (x, y, z) → [screen x, screen y, depth], or null behind the near plane. */
  function project(x, y, z) {
    const dx = x - view.eye[0];
    const dy = y - view.eye[1];
    const dz = z - view.eye[2];
    const depth = dx * view.f[0] + dy * view.f[1] + dz * view.f[2];
    if (depth < NEAR) return null;
    const sx = dx * view.r[0] + dy * view.r[1] + dz * view.r[2];
    const sy = dx * view.u[0] + dy * view.u[1] + dz * view.u[2];
    return [view.cx + (view.focal * sx) / depth, view.cy - (view.focal * sy) / depth, depth];
  }

  /** Floor grid under the scene: 5 cm squares, as a list of 3D segments. */
  function floorGrid(lo, hi) {
    const step = 0.05;
    const margin = 0.1;
    const z = lo[2] - 0.01;
    const x0 = Math.floor((lo[0] - margin) / step) * step;
    const x1 = Math.ceil((hi[0] + margin) / step) * step;
    const y0 = Math.floor((lo[1] - margin) / step) * step;
    const y1 = Math.ceil((hi[1] + margin) / step) * step;
    const segments = [];
    for (let x = x0; x <= x1 + 1e-9; x += step) segments.push([[x, y0, z], [x, y1, z]]);
    for (let y = y0; y <= y1 + 1e-9; y += step) segments.push([[x0, y, z], [x1, y, z]]);
    return segments;
  }

  /** Joint j of hand h at frame t: index into a motion's values. */
  function at(t, h, j) {
    return ((t * 2 + h) * JOINTS + j) * 3;
  }

  /** Match the canvas's pixel size to its box (and the device pixel ratio). */
  function fitCanvas() {
    const dpr = window.devicePixelRatio || 1;
    const width = el.canvas.clientWidth;
    const height = el.canvas.clientHeight;
    const pw = Math.max(1, Math.round(width * dpr));
    const ph = Math.max(1, Math.round(height * dpr));
    if (el.canvas.width !== pw || el.canvas.height !== ph) {
      el.canvas.width = pw;
      el.canvas.height = ph;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return [width, height];
  }

  function draw() {
    const [width, height] = fitCanvas();
    ctx.fillStyle = "#171a21";
    ctx.fillRect(0, 0, width, height);
    state.drawn = {};
    if (!scene) return;
    view = cameraFrame(width, height);
    drawGrid();
    for (const actor of scene.actors) {
      // A motion shorter than the scene holds its last frame.
      actor.frame = Math.min(state.frame, actor.data.frames - 1);
      const m = actor.data.motion;
      state.drawn[actor.name] = {
        frame: actor.frame,
        offset: actor.offset.slice(),
        wrists: [0, 1].map((h) => Array.from(m.subarray(at(actor.frame, h, 0), at(actor.frame, h, 0) + 3))),
      };
      if (el.trails.checked) drawWristPaths(actor);
    }
    drawHands(scene.actors);
    if (scene.actors.length > 1) scene.actors.forEach(drawLabel);
    drawAxes(width, height);
  }

  function drawGrid() {
    ctx.strokeStyle = "rgba(148, 163, 184, 0.18)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [a, b] of scene.grid) {
      const pa = project(a[0], a[1], a[2]);
      const pb = project(b[0], b[1], b[2]);
      if (!pa || !pb) continue;
      ctx.moveTo(pa[0], pa[1]);
      ctx.lineTo(pb[0], pb[1]);
    }
    ctx.stroke();
  }

  /** The path of each wrist of one motion over all its frames, faint, so the movement reads at a glance. */
  function drawWristPaths(actor) {
    const m = actor.data.motion;
    const [ox, oy, oz] = actor.offset;
    for (let h = 0; h < 2; h++) {
      ctx.strokeStyle = WRIST_TRAIL[skeleton.hands[h]] || "rgba(255,255,255,0.3)";
      ctx.lineWidth = 1.5;
      ctx.setLineDash(actor.name === "generated" ? [5, 4] : []);
      ctx.beginPath();
      let started = false;
      for (let t = 0; t < actor.data.frames; t++) {
        const i = at(t, h, 0);
        const p = project(m[i] + ox, m[i + 1] + oy, m[i + 2] + oz);
        if (!p) {
          started = false;
          continue;
        }
        if (started) ctx.lineTo(p[0], p[1]);
        else ctx.moveTo(p[0], p[1]);
        started = true;
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  /**
   * Both hands of every motion at its frame. Bones and joints of all of them are drawn far to near
   * (painter's order), with widths that shrink with depth, so overlapping fingers read correctly from any
   * angle, also when the generated motion is drawn on the clip.
   */
  function drawHands(actors) {
    const items = [];
    for (const actor of actors) {
      const m = actor.data.motion;
      const [ox, oy, oz] = actor.offset;
      for (let h = 0; h < 2; h++) {
        const hand = skeleton.hands[h];
        const points = [];
        for (let j = 0; j < JOINTS; j++) {
          const i = at(actor.frame, h, j);
          points.push(project(m[i] + ox, m[i + 1] + oy, m[i + 2] + oz));
        }
        skeleton.bones.forEach(([a, b], k) => {
          const pa = points[a];
          const pb = points[b];
          if (!pa || !pb) return;
          const colour = COLOURS[hand][skeleton.boneFingers[k]] || "#ffffff";
          items.push({ depth: (pa[2] + pb[2]) / 2, kind: "bone", pa, pb, colour });
        });
        points.forEach((p, j) => {
          if (!p) return;
          const colour = COLOURS[hand][skeleton.jointFingers[j]] || "#ffffff";
          items.push({ depth: p[2], kind: "joint", p, colour, wrist: j === 0 });
        });
        if (points[0]) items.push({ depth: points[0][2] - 1e-6, kind: "label", p: points[0], hand });
      }
    }
    items.sort((x, y) => y.depth - x.depth);
    ctx.lineCap = "round";
    for (const item of items) {
      if (item.kind === "bone") {
        ctx.strokeStyle = item.colour;
        ctx.lineWidth = clamp((0.007 * view.focal) / item.depth, 1.5, 10);
        ctx.beginPath();
        ctx.moveTo(item.pa[0], item.pa[1]);
        ctx.lineTo(item.pb[0], item.pb[1]);
        ctx.stroke();
      } else if (item.kind === "joint") {
        const radius = clamp(((item.wrist ? 0.009 : 0.0055) * view.focal) / item.depth, 1.5, 12);
        ctx.fillStyle = item.colour;
        ctx.beginPath();
        ctx.arc(item.p[0], item.p[1], radius, 0, 2 * Math.PI);
        ctx.fill();
        ctx.strokeStyle = "rgba(0, 0, 0, 0.45)";
        ctx.lineWidth = 1;
        ctx.stroke();
      } else {
        ctx.fillStyle = "#e5e7eb";
        ctx.font = "600 12px system-ui, sans-serif";
        ctx.fillText(item.hand === "left" ? "L" : "R", item.p[0] + 10, item.p[1] + 16);
      }
    }
  }

  /** The name of a motion ("clip", "generated") above the middle of its box. */
  function drawLabel(actor) {
    const d = actor.data;
    const o = actor.offset;
    const p = project((d.lo[0] + d.hi[0]) / 2 + o[0], (d.lo[1] + d.hi[1]) / 2 + o[1], d.hi[2] + o[2] + 0.03);
    if (!p) return;
    ctx.font = "600 12px system-ui, sans-serif";
    ctx.fillStyle = actor.name === "generated" ? "#c3fae8" : "#e5e7eb";
    ctx.textAlign = "center";
    ctx.fillText(actor.label, p[0], p[1]);
    ctx.textAlign = "start";
  }

  /** A small x/y/z gizmo in the bottom-left corner showing the current orientation. */
  function drawAxes(width, height) {
    const origin = [42, height - 42];
    const size = 26;
    const axes = [
      ["x", [1, 0, 0], "#ff6b6b"],
      ["y", [0, 1, 0], "#51cf66"],
      ["z", [0, 0, 1], "#4dabf7"],
    ];
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 2;
    for (const [name, d, colour] of axes) {
      const sx = d[0] * view.r[0] + d[1] * view.r[1] + d[2] * view.r[2];
      const sy = d[0] * view.u[0] + d[1] * view.u[1] + d[2] * view.u[2];
      const end = [origin[0] + size * sx, origin[1] - size * sy];
      ctx.strokeStyle = colour;
      ctx.beginPath();
      ctx.moveTo(origin[0], origin[1]);
      ctx.lineTo(end[0], end[1]);
      ctx.stroke();
      ctx.fillStyle = colour;
      ctx.fillText(name, end[0] + 3 * Math.sign(sx || 1), end[1] - 3 * Math.sign(sy || 1));
    }
  }

  /** The skeleton from /api/meta, with the finger of each joint (of the bone ending there; the wrist: palm). */
  function skeletonOf(info) {
    const jointFingers = new Array(JOINTS).fill("palm");
    info.bones.forEach(([, child], k) => {
      jointFingers[child] = info.bone_fingers[k];
    });
    return { bones: info.bones, boneFingers: info.bone_fingers, hands: info.hands, jointFingers };
  }

  /** Colour key, built from the skeleton's finger list (not hard-coded here). */
  function buildLegend(fingers) {
    el.legend.replaceChildren();
    for (const hand of ["left", "right"]) {
      const li = make("li", null, `${hand} hand`);
      const swatches = make("span", "swatches");
      for (const finger of fingers) {
        const swatch = make("span", "swatch");
        swatch.style.background = COLOURS[hand][finger];
        swatch.title = `${hand} ${finger}`;
        swatches.appendChild(swatch);
      }
      li.appendChild(swatches);
      el.legend.appendChild(li);
    }
    const note = make("li", null, fingers.join(" · "));
    el.legend.appendChild(note);
  }

  // ---------------------------------------------------------------------------------------------------
  // Generate panel (handx view --generate)
  // ---------------------------------------------------------------------------------------------------

  /** Show the panel when the server has a generator (meta.generate), with its modes and defaults. */
  function setupGenerate(info) {
    if (!info) return;
    el.gen.panel.hidden = false;
    el.gen.model.textContent = `model ${info.run} · ${info.frames} frames at ${info.fps} fps`;
    for (const box of Object.values(el.gen.texts)) box.maxLength = info.max_text;
    el.gen.mode.replaceChildren(...info.modes.map((mode) => {
      const option = make("option", null, mode.label);
      option.value = mode.name;
      return option;
    }));
    // A family without sampler steps (info.steps null) has no steps box, and none is sent.
    el.gen.steps.closest("label").hidden = info.steps === null;
    if (info.steps !== null) {
      el.gen.steps.value = String(info.steps);
      el.gen.steps.max = String(info.max_steps);
    }
    el.gen.seed.max = String(info.max_seed);
  }

  function genStatus(message, isError) {
    el.gen.status.textContent = message;
    el.gen.status.classList.toggle("error", Boolean(isError));
  }

  /** Copy the open clip's selected text variant (else its first) into the three boxes. */
  function fillTexts() {
    if (!clip) return;
    const texts = clip.payload.texts || {};
    const pick = (branch) => {
      const variants = texts[branch] || [];
      return variants[state.variant] ?? variants[0] ?? "";
    };
    el.gen.texts.left.value = pick("left");
    el.gen.texts.right.value = pick("right");
    el.gen.texts.relation.value = pick("two_hands_relation");
  }

  /** Ask the server for a motion (the server checks everything); show it beside the clip and play. */
  async function runGenerate() {
    if (state.generating) return;
    const body = {
      texts: {
        left: el.gen.texts.left.value,
        right: el.gen.texts.right.value,
        relation: el.gen.texts.relation.value,
      },
      mode: el.gen.mode.value,
      seed: Number(el.gen.seed.value),
    };
    if (!el.gen.steps.closest("label").hidden) body.steps = Number(el.gen.steps.value);
    if (el.gen.clip.value === "open" && state.clipId) {
      body.clip = state.clipId;
      if (state.file) body.file = state.file;
    }
    state.generating = true;
    el.gen.run.disabled = true;
    genStatus("generating…", false);
    try {
      const answer = await postJSON("/api/generate", body);
      showGenerated(answer);
      genStatus(`generated in ${answer.seconds.toFixed(2)} s · ${answer.mode} · seed ${answer.seed}`
                + (answer.steps === null ? "" : ` · ${answer.steps} steps`), false);
    } catch (err) {
      genStatus(`cannot generate: ${err.message}`, true);
    } finally {
      state.generating = false;
      el.gen.run.disabled = false;
    }
  }

  function showGenerated(answer) {
    generated = { answer, ...decodeMotion(answer) };
    state.generated = {
      frames: answer.frames, seconds: answer.seconds, mode: answer.mode, clipId: answer.clip,
      file: answer.file, seed: answer.seed, steps: answer.steps,
    };
    el.gen.hide.disabled = false;
    relayout();
    pause();
    setFrame(0);
    play();
  }

  function hideGenerated() {
    generated = null;
    state.generated = null;
    el.gen.hide.disabled = true;
    relayout();
  }

  function relayout() {
    layoutScene();
    resetCamera();
    setFrame(state.frame);
    draw();
  }

  function wireGenerate() {
    el.gen.run.addEventListener("click", runGenerate);
    el.gen.fill.addEventListener("click", fillTexts);
    el.gen.hide.addEventListener("click", hideGenerated);
    el.gen.overlay.addEventListener("change", relayout);
    // Ctrl+Enter (⌘+Enter) in a text box generates.
    for (const box of Object.values(el.gen.texts)) {
      box.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          runGenerate();
        }
      });
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Input: mouse orbit and zoom, keyboard, controls
  // ---------------------------------------------------------------------------------------------------

  function wireInput() {
    let drag = null;
    el.canvas.addEventListener("pointerdown", (event) => {
      drag = { x: event.clientX, y: event.clientY, yaw: camera.yaw, pitch: camera.pitch };
      el.canvas.setPointerCapture(event.pointerId);
      el.canvas.focus();
    });
    el.canvas.addEventListener("pointermove", (event) => {
      if (!drag) return;
      camera.yaw = drag.yaw + 0.008 * (event.clientX - drag.x);
      camera.pitch = clamp(drag.pitch + 0.008 * (event.clientY - drag.y), -1.5, 1.5);
      draw();
    });
    const endDrag = () => {
      drag = null;
    };
    el.canvas.addEventListener("pointerup", endDrag);
    el.canvas.addEventListener("pointercancel", endDrag);
    el.canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      if (!scene) return;
      const base = (0.9 * scene.radius) / Math.sin(FOV / 2);
      camera.distance = clamp(camera.distance * Math.exp(0.0015 * event.deltaY), 0.15 * base, 8 * base);
      draw();
    }, { passive: false });
    el.canvas.addEventListener("dblclick", () => {
      resetCamera();
      draw();
    });

    el.play.addEventListener("click", togglePlay);
    el.scrub.addEventListener("input", () => {
      pause();
      setFrame(Number(el.scrub.value));
    });
    el.speed.addEventListener("change", () => {
      state.speed = Number(el.speed.value);
    });
    el.trails.addEventListener("change", draw);
    el.resetView.addEventListener("click", () => {
      resetCamera();
      draw();
    });
    el.changesOnly.addEventListener("change", () => {
      if (clip) {
        buildTimeline(clip.payload.timeline, clip.frames);
        updateTimeline(state.frame, clip.frames);
      }
    });
    el.more.addEventListener("click", () => loadList(false));

    let searchTimer = null;
    el.search.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => loadList(true), 200);
    });

    // Space plays/pauses and arrows step, unless the user is typing or using a form control.
    document.addEventListener("keydown", (event) => {
      if (event.target.closest("input, select, textarea, button")) return;
      if (event.key === " ") {
        event.preventDefault();
        togglePlay();
      } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        event.preventDefault();
        pause();
        setFrame(state.frame + (event.key === "ArrowRight" ? 1 : -1));
      }
    });
    window.addEventListener("resize", draw);
  }

  // ---------------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------------

  async function init() {
    wireInput();
    wireGenerate();
    draw();
    requestAnimationFrame(tick);
    try {
      meta = await getJSON("/api/meta");
      el.sourceInfo.textContent = `${meta.name} · ${meta.kind} · ${meta.count} clips`;
      skeleton = skeletonOf(meta);
      buildLegend(meta.fingers);
      setupGenerate(meta.generate);
      if (meta.skipped && meta.skipped.length) {
        showStatus(`${meta.skipped.length} file(s) could not be read and are not listed`, false);
      }
      await loadList(true);
      // Open the clip named in the address (#id=...&file=...), else the first one listed.
      const wanted = new URLSearchParams(location.hash.slice(1));
      const first = el.list.firstElementChild;
      if (wanted.get("id")) {
        await loadClip(wanted.get("id"), wanted.get("file"));
      } else if (first) {
        await loadClip(first.dataset.id, first.dataset.file || null);
      }
    } catch (err) {
      fail("cannot start", err);
    } finally {
      state.ready = true;
    }
  }

  init();
})();
