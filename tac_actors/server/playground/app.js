// The playground: a ConversationRelay caller in the browser. It speaks the frames Twilio
// sends (setup, prompt, interrupt) and shows the ones the server sends (text, end, ...).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const log = $("log"), status = $("status");
  let socket = null, reply = null, heard = "";

  function hex(n) {
    const bytes = new Uint8Array(n);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function line(kind, text) {
    const div = document.createElement("div");
    div.className = "turn " + kind;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }
  function connected(on) {
    $("connect").disabled = on;
    $("from").disabled = on;
    $("hangup").disabled = !on;
    $("message").disabled = !on;
    $("send").disabled = !on;
    $("interrupt").disabled = !on;
    if (on) $("message").focus();
  }
  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }
  function onFrame(frame) {
    switch (frame.type) {
      case "text":
        if (frame.token) {
          if (!reply) { reply = line("agent", ""); heard = ""; }
          reply.textContent += frame.token;
          heard += frame.token;
        }
        if (frame.last) { if (reply) reply.dataset.done = "1"; reply = null; }
        break;
      case "end":
        line("note", "the agent ended the call" +
             (frame.handoffData ? " with handoff data " + frame.handoffData : ""));
        break;
      case "play": line("note", "(plays " + frame.source + ")"); break;
      case "sendDigits": line("note", "(sends digits " + frame.digits + ")"); break;
      case "language": line("note", "(switches language to " + frame.ttsLanguage + ")"); break;
      default: line("note", "(frame " + frame.type + ")");
    }
  }
  $("connect").addEventListener("click", () => {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + location.host + document.body.dataset.wsPath;
    const callSid = "CA" + hex(16);
    socket = new WebSocket(url);
    status.textContent = "connecting to " + url + " ...";
    socket.addEventListener("open", () => {
      send({ type: "setup", sessionId: "VX" + hex(16), accountSid: "AC" + "0".repeat(32),
             callSid: callSid, from: $("from").value, to: "+15550002222",
             direction: "inbound", callType: "PSTN", callStatus: "RINGING",
             customParameters: { source: "playground" } });
      status.textContent = "in call " + callSid;
      status.dataset.callSid = callSid;
      connected(true);
    });
    socket.addEventListener("message", (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (err) { line("note", "(bad frame)"); }
    });
    socket.addEventListener("close", (event) => {
      status.textContent = "call over (" + event.code + (event.reason ? " " + event.reason : "") + ")";
      socket = null; reply = null;
      connected(false);
    });
  });
  $("hangup").addEventListener("click", () => { if (socket) socket.close(1000, "caller hung up"); });
  $("say").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("message").value.trim();
    if (!text) return;
    $("message").value = "";
    if (reply) { reply.classList.add("interrupted"); reply = null; }
    line("you", text);
    send({ type: "prompt", voicePrompt: text, lang: "en-US", last: true });
  });
  $("interrupt").addEventListener("click", () => {
    if (reply) { reply.classList.add("interrupted"); reply.dataset.done = "1"; reply = null; }
    send({ type: "interrupt", utteranceUntilInterrupt: heard, durationUntilInterruptMs: 500 });
    line("note", "(you interrupted)");
  });

  // Texting (only under `tac-actors dev`): POST /playground/sms stores the text in the
  // emulator and delivers its webhook; GET /playground/sms polls the agent's answers.
  if (document.body.dataset.sms) {
    const smsLog = $("sms-log"), smsStatus = $("sms-status");
    let polling = null;
    $("sms").hidden = false;
    function smsLine(kind, text) {
      const div = document.createElement("div");
      div.className = "turn " + kind;
      div.textContent = text;
      smsLog.appendChild(div);
      return div;
    }
    async function poll(from) {
      try {
        const answer = await fetch("playground/sms?from=" + encodeURIComponent(from));
        const body = await answer.json();
        if (!answer.ok) { smsStatus.textContent = body.error || ("HTTP " + answer.status); return; }
        for (const text of body.replies) smsLine("agent", text);
      } catch (err) { smsStatus.textContent = "cannot reach the server"; }
    }
    $("text").addEventListener("submit", async (event) => {
      event.preventDefault();
      const from = $("sms-from").value.trim(), text = $("sms-message").value.trim();
      if (!from || !text) return;
      $("sms-message").value = "";
      smsLine("you", text);
      smsStatus.textContent = "sending ...";
      try {
        const answer = await fetch("playground/sms", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ from: from, text: text }) });
        const body = await answer.json();
        smsStatus.textContent = answer.ok ? "sent from " + from : (body.error || ("HTTP " + answer.status));
      } catch (err) { smsStatus.textContent = "cannot reach the server"; }
      if (polling) clearInterval(polling);
      polling = setInterval(() => poll(from), 500);
      poll(from);
    });
  }
}());
