// ccfpush web UI: inline validation, form submission without reloads, and
// the live view of a send over Server-Sent Events. Plain JavaScript, no
// dependencies. Every form also works without this script (the server
// renders the result page), so it only improves what is there.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function fmt(n) {
    n = Number(n || 0);
    return Math.round(n).toLocaleString("en-US");
  }

  // post sends a form (or extra fields) as urlencoded with the CSRF header
  // and returns {status, body}.
  function post(url, form, extra) {
    var params = new URLSearchParams(form ? new FormData(form) : undefined);
    if (extra) {
      Object.keys(extra).forEach(function (k) { params.set(k, extra[k]); });
    }
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRF-Token": csrf,
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: params.toString()
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        return { status: resp.status, body: body };
      });
    });
  }

  function busy(button, on) {
    if (!button) { return; }
    button.disabled = on;
    if (on) { button.setAttribute("aria-busy", "true"); } else { button.removeAttribute("aria-busy"); }
  }

  function notice(container, kind, text) {
    container.textContent = "";
    if (text) { container.appendChild(el("p", "notice notice-" + kind, text)); }
  }

  // Field errors: the <p id="err-NAME"> next to each field.
  function setFieldError(name, message) {
    var box = $("err-" + name);
    var input = $("f-" + name);
    var field = box ? box.closest(".field") : null;
    if (!box) { return; }
    if (message) {
      box.textContent = message;
      box.hidden = false;
      if (input) { input.setAttribute("aria-invalid", "true"); }
      if (field) { field.classList.add("has-error"); }
    } else {
      box.textContent = "";
      box.hidden = true;
      if (input) { input.removeAttribute("aria-invalid"); }
      if (field) { field.classList.remove("has-error"); }
    }
  }

  function showFieldErrors(form, fields) {
    var first = null;
    form.querySelectorAll("[data-field]").forEach(function (f) {
      var name = f.getAttribute("data-field");
      var msg = fields && fields[name] ? fields[name] : "";
      setFieldError(name, msg);
      if (msg && !first) { first = $("f-" + name); }
    });
    return first;
  }

  // setTarget updates the header's badge saying where records go.
  function setTarget(t) {
    var badge = $("target");
    if (!badge || !t) { return; }
    badge.textContent = t.label;
    badge.className = "target target-" + (t.kind || "none");
  }

  // clock formats a time as HH:MM:SS (24 hours), so that it fits the log's
  // time column on one line whatever the locale.
  function clock(time) {
    var d = new Date(time);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  // ---------- Configuration ----------
  function initConfig() {
    var form = $("config-form");
    if (!form) { return; }
    var status = $("form-status");
    var timers = {};
    var touched = {};

    function validate(input) {
      var name = input.name;
      if (input.value.trim() === "" && input.type !== "checkbox") {
        // An empty field is flagged when the form is saved, not when the
        // pointer leaves it: an error appearing on blur moves the Save
        // button away from under the pointer about to click it.
        setFieldError(name, "");
        return;
      }
      post("/config/validate", form, { field: name }).then(function (r) {
        if (r.status === 200 && r.body && r.body.field === name) {
          setFieldError(name, r.body.error || "");
        }
      }).catch(function () { /* offline: the save reports everything */ });
    }

    form.querySelectorAll("[data-validate]").forEach(function (input) {
      input.addEventListener("blur", function () {
        touched[input.name] = true;
        validate(input);
      });
      var onChange = function () {
        // While typing, re-check only fields already checked once, so a
        // half-typed value is not flagged before the user is done.
        if (!touched[input.name]) { return; }
        clearTimeout(timers[input.name]);
        timers[input.name] = setTimeout(function () { validate(input); }, 350);
      };
      input.addEventListener("input", onChange);
      input.addEventListener("change", function () { touched[input.name] = true; validate(input); });
    });

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = $("save");
      busy(button, true);
      notice(status, "info", "Saving…");
      post(form.action, form).then(function (r) {
        busy(button, false);
        if (r.status === 200 && r.body.ok) {
          showFieldErrors(form, {});
          notice(status, "ok", r.body.message);
          setTarget(r.body.target);
          var secret = $("f-application_secret");
          if (secret) {
            secret.value = "";
            if (r.body.secret_saved) {
              secret.placeholder = "•••••••• saved — leave empty to keep it";
              var note = $("secret-note");
              if (note) {
                note.setAttribute("data-saved", "yes");
                note.textContent = "A secret is saved. It is never shown here: leave the field empty to keep it, or type a new one to replace it.";
              }
            }
          }
          var clear = $("f-clear-secret");
          if (clear) { clear.checked = false; }
          return;
        }
        var first = showFieldErrors(form, r.body.fields || {});
        notice(status, "error", r.body.error || "The configuration could not be saved.");
        if (first) {
          var adv = first.closest("details");
          if (adv) { adv.open = true; }
          first.focus();
        }
      }).catch(function (err) {
        busy(button, false);
        notice(status, "error", "The server did not answer: " + err);
      });
    });
  }

  // ---------- Test connection ----------
  function renderChecks(results) {
    var list = $("check-results");
    list.textContent = "";
    (results || []).forEach(function (res) {
      var li = el("li", "check-item status-" + res.status);
      var head = el("div", "check-head");
      head.appendChild(el("span", "badge badge-" + res.status, res.status));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("strong", "", res.name));
      li.appendChild(head);
      li.appendChild(el("p", "check-detail", res.detail));
      var findings = res.findings || [];
      findings.forEach(function (f) {
        if (f.status === "ok") { return; }
        var d = el("div", "finding");
        d.appendChild(el("span", "badge badge-" + f.status, f.status));
        d.appendChild(document.createTextNode(" " + f.message));
        if (f.hint) {
          var h = el("p", "hint");
          h.appendChild(el("span", "hint-label", "Fix:"));
          h.appendChild(document.createTextNode(" " + f.hint));
          d.appendChild(h);
        }
        li.appendChild(d);
      });
      if (res.hint && findings.length === 0) {
        var h = el("p", "hint");
        h.appendChild(el("span", "hint-label", "Fix:"));
        h.appendChild(document.createTextNode(" " + res.hint));
        li.appendChild(h);
      }
      list.appendChild(li);
    });
  }

  function initCheck() {
    var form = $("check-form");
    if (!form) { return; }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = $("run-checks");
      var out = $("check-output");
      var status = $("check-status");
      busy(button, true);
      out.hidden = false;
      $("check-results").textContent = "";
      notice(status, "info", "Running the checks… this can take a few seconds.");
      post(form.action, form).then(function (r) {
        busy(button, false);
        if (r.status !== 200 || !r.body.ok) {
          notice(status, "error", r.body.error || "The checks could not run.");
          return;
        }
        notice(status, r.body.worst, r.body.summary);
        renderChecks(r.body.results);
      }).catch(function (err) {
        busy(button, false);
        notice(status, "error", "The server did not answer: " + err);
      });
    });
  }

  // ---------- Generate ----------
  function initGenerate() {
    var form = $("generate-form");
    if (!form) { return; }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var button = $("generate");
      var status = $("generate-status");
      busy(button, true);
      notice(status, "info", "Generating…");
      post(form.action, form).then(function (r) {
        busy(button, false);
        var first = showFieldErrors(form, r.body.fields || {});
        if (r.status !== 200 || !r.body.ok) {
          notice(status, "error", r.body.error || "Nothing was generated.");
          if (first) { first.focus(); }
          return;
        }
        notice(status, "", "");
        var res = r.body.result;
        $("generate-message").textContent = res.message;
        $("send-generated").setAttribute("href", "/send?file=" + encodeURIComponent(res.file));
        $("generate-preview").textContent = (res.preview || []).join(",\n");
        var section = $("generate-result");
        section.hidden = false;
        section.scrollIntoView({ block: "nearest" });
      }).catch(function (err) {
        busy(button, false);
        notice(status, "error", "The server did not answer: " + err);
      });
    });
  }

  // ---------- Send: live view and activity log ----------
  var MAX_LOG_LINES = 5000;

  function initSend() {
    var live = $("live");
    if (!live) { return; }
    var form = $("send-form");
    var log = $("log");
    var streamState = $("stream-state");
    var stopButton = $("stop-send");
    var startButton = $("start-send");
    var state = {
      run: live.getAttribute("data-run") || "",
      renderedAt: Number(live.getAttribute("data-last-event") || 0),
      total: -1
    };

    function setStatus(s) {
      var badge = $("run-status");
      badge.textContent = s;
      badge.className = "badge badge-" + s;
      live.setAttribute("data-status", s);
      var done = s === "ok" || s === "partial" || s === "failed" || s === "stopped";
      stopButton.disabled = done || s === "idle";
      // One send at a time: the server refuses a second one anyway.
      if (startButton && startButton.getAttribute("aria-busy") !== "true") {
        startButton.disabled = !(done || s === "idle") || startButton.hasAttribute("data-off");
      }
    }

    function updateProgress(stats, total) {
      if (typeof total === "number" && total >= 0) { state.total = total; }
      var handled = Number(stats.records_sent || 0) + Number(stats.records_failed || 0);
      var progress = $("progress");
      var max = state.total > 0 ? state.total : Math.max(handled, 1);
      progress.max = max;
      progress.value = Math.min(handled, max);
      $("progress-label").textContent = fmt(handled) + " of " + (state.total >= 0 ? fmt(state.total) : "…") + " records";
      $("m-sent").textContent = fmt(stats.records_sent);
      $("m-failed").textContent = fmt(stats.records_failed);
      $("m-retries").textContent = fmt(stats.retries);
      $("m-throttled").textContent = fmt(stats.throttled);
      $("m-requests").textContent = fmt(stats.requests);
      $("m-rate").textContent = fmt(stats.records_per_second);
    }

    function startRun(run) {
      state.run = run.id;
      state.total = typeof run.total === "number" ? run.total : -1;
      $("run-file").textContent = run.file + " → " + run.stream + " · started " + new Date(run.started).toLocaleString();
      $("summary").hidden = true;
      setStatus(run.status || "running");
      updateProgress(run.stats || {}, run.total);
    }

    function finishRun(run) {
      setStatus(run.status);
      updateProgress(run.stats || {}, run.total);
      var list = $("summary-list");
      list.textContent = "";
      (run.summary || []).forEach(function (line) {
        var div = el("div", line.label === "dead-letter" || line.label === "answers" || line.label === "destination" ? "wide" : "");
        div.appendChild(el("dt", "", line.label));
        div.appendChild(el("dd", "", line.value));
        list.appendChild(div);
      });
      var err = $("summary-error");
      err.textContent = run.error || "";
      err.hidden = !run.error;
      $("summary-hint-text").textContent = run.hint || "";
      $("summary-hint").hidden = !run.hint;
      $("summary").hidden = false;
      var verify = $("verify");
      if (verify && verify.getAttribute("data-enabled") === "yes") {
        verify.hidden = false;
      }
    }

    function renderVerify(v) {
      var box = $("verify");
      if (!box || !v) { return; }
      box.hidden = false;
      box.setAttribute("data-status", v.status);
      var running = v.status === "running";
      $("verify-run").disabled = running;
      busy($("verify-run"), running);
      $("verify-status").textContent = running ? v.progress : (v.status === "failed" ? v.error : v.verdict);
      $("verify-hint-text").textContent = v.hint || "";
      $("verify-hint").hidden = !v.hint;
      $("verify-metrics").hidden = v.status === "failed";
      $("v-landed").textContent = fmt(v.landed);
      $("v-missing").textContent = running ? "…" : fmt(v.missing);
      $("v-duplicated").textContent = running ? "…" : fmt(v.duplicated);
      var list = $("verify-reasons");
      list.textContent = "";
      (v.reasons || []).forEach(function (r) {
        var li = el("li", "");
        li.appendChild(el("strong", "", fmt(r.count)));
        li.appendChild(document.createTextNode(" " + r.detail + " "));
        if (r.example_keys && r.example_keys.length) {
          li.appendChild(el("span", "muted", "e.g. " + r.example_keys.join(", ")));
        }
        list.appendChild(li);
      });
      (v.duplicates || []).forEach(function (d) {
        var li = el("li", "dup");
        li.appendChild(el("strong", "", d.key));
        li.appendChild(document.createTextNode(" " + d.count + " rows, " + d.expected + " expected"));
        list.appendChild(li);
      });
      var missing = $("verify-missing");
      missing.hidden = !v.missing_file;
      if (v.missing_file) {
        $("verify-missing-file").textContent = v.missing_file;
        $("verify-resend").setAttribute("href", "/send?file=" + encodeURIComponent(v.missing_file));
      }
    }

    function appendLine(cls, id, time, kind, text) {
      var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      var li = el("li", cls);
      if (id) { li.setAttribute("data-id", id); }
      li.appendChild(el("span", "id", id ? "#" + id : ""));
      var t = el("time", "", time ? clock(time) : "");
      if (time) { t.setAttribute("datetime", time); }
      li.appendChild(t);
      li.appendChild(el("span", "kind", kind));
      li.appendChild(el("span", "text", text));
      log.appendChild(li);
      while (log.childElementCount > MAX_LOG_LINES) { log.removeChild(log.firstElementChild); }
      if (atBottom) { log.scrollTop = log.scrollHeight; }
    }

    function onEvent(e) {
      appendLine("lvl-" + (e.level || "info") + " kind-" + e.kind, e.id, e.time, e.kind, e.text);
      var data = e.data || {};
      // Events from before this page was rendered replay the log; they
      // drive the live view only for the run the page was rendered with.
      var replay = e.id <= state.renderedAt;
      if (e.kind === "run_started" && data.run) {
        if (!replay || data.run.id === state.run) { startRun(data.run); }
        return;
      }
      if (!e.run || e.run !== state.run) { return; }
      if ((e.kind === "verify_progress" || e.kind === "verify_done") && data.verify) {
        renderVerify(data.verify);
        return;
      }
      if (e.kind === "done" && data.run) {
        finishRun(data.run);
        return;
      }
      if (data.stats) {
        var current = $("run-status").textContent.trim();
        if (e.kind === "stopping") { setStatus("stopping"); }
        else if (current === "counting" || current === "idle") { setStatus("running"); }
        updateProgress(data.stats, data.total);
      }
    }

    var source = null;
    function connect() {
      // A fresh page replays the whole history (after=0) so the log is
      // complete; the browser's reconnections resume by Last-Event-ID.
      source = new EventSource("/events?after=0");
      source.onopen = function () { streamState.textContent = "live"; };
      source.onerror = function () {
        streamState.textContent = source.readyState === EventSource.CLOSED ? "disconnected — reload the page" : "reconnecting…";
      };
      source.onmessage = function (m) {
        var e;
        try { e = JSON.parse(m.data); } catch (err) { return; }
        onEvent(e);
      };
      source.addEventListener("gap", function (m) {
        var g = JSON.parse(m.data);
        appendLine("gap", "", "", "gap", "… events " + g.from + " to " + g.to + " are no longer kept");
      });
    }
    connect();

    if (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var status = $("send-status");
        busy(startButton, true);
        post(form.action, form).then(function (r) {
          busy(startButton, false);
          showFieldErrors(form, r.body.fields || {});
          if (r.status !== 202 || !r.body.ok) {
            notice(status, "error", r.body.error || "The send could not start.");
            return;
          }
          notice(status, "", "");
          // The stream may have announced the run before this answer came.
          if (state.run !== r.body.run.id) { startRun(r.body.run); }
        }).catch(function (err) {
          busy(startButton, false);
          notice(status, "error", "The server did not answer: " + err);
        });
      });
    }
    var verifyForm = $("verify-form");
    if (verifyForm) {
      verifyForm.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var button = $("verify-run");
        busy(button, true);
        post(verifyForm.action, verifyForm).then(function (r) {
          if (r.status !== 202 || !r.body.ok) {
            busy(button, false);
            $("verify-status").textContent = r.body.error || "Verify could not start.";
            return;
          }
          renderVerify(r.body.verify);
        }).catch(function (err) {
          busy(button, false);
          $("verify-status").textContent = "The server did not answer: " + err;
        });
      });
    }
    if (stopButton) {
      stopButton.addEventListener("click", function () {
        stopButton.disabled = true;
        post("/send/stop").then(function (r) {
          if (r.status === 202) { setStatus("stopping"); }
        });
      });
    }
    var refresh = $("refresh-files");
    if (refresh) {
      refresh.addEventListener("click", function () {
        fetch("/api/files", { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            var select = $("f-file");
            var current = select.value;
            select.textContent = "";
            (body.files || []).forEach(function (f) {
              var o = el("option", "", f.path);
              o.value = f.path;
              if (f.path === current) { o.selected = true; }
              select.appendChild(o);
            });
            if (!select.options.length) {
              var o = el("option", "", "No .json or .ndjson file in the working directory");
              o.value = "";
              select.appendChild(o);
            }
          });
      });
    }
    if (!state.run) { setStatus("idle"); }
    else { setStatus($("run-status").textContent.trim()); }
  }

  // ---------- Logs ----------
  function initLogs() {
    var form = $("logs-form");
    if (!form) { return; }
    $("f-query").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        if (!$("run-query").disabled) { form.requestSubmit($("run-query")); }
      }
    });
    form.addEventListener("submit", function () { busy($("run-query"), true); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initLogs();
    initConfig();
    initCheck();
    initGenerate();
    initSend();
  });
})();
