// A stand-in for Dynamics 365's msdyn_ciLibrary.js (dev mode only, switchboard-hub /hosts/cif).
// Like the real library it posts {messageType, messageData, messageCorrelationId} to window.top,
// on the CRM origin named by data-crmurl (else the ucilib parameter, else the referrer), takes
// {messageOutcome, messageData, messageCorrelationId} back, dispatches CIFInitDone from a
// zero-delay timer, and hands event handlers their data as a JSON string. Served under /cif1/
// it is CIF 1.0: no notifyEvent, cancelEvent or session APIs.
(function () {
  'use strict';
  const script = document.currentScript;
  const v1 = /\/cif1\//.test(script ? script.src : '');
  const crmUrl = (script && script.getAttribute('data-crmurl'))
    || new URLSearchParams(location.search).get('ucilib') || document.referrer;
  const crmOrigin = new URL(crmUrl, location.href).origin;
  const pending = new Map();
  const handlers = new Map();
  let next = 0;

  function send(messageType, args) {
    const messageCorrelationId = 'cif-' + (++next);
    return new Promise((resolve, reject) => {
      pending.set(messageCorrelationId, { resolve, reject });
      window.top.postMessage({ messageType, messageData: args, messageCorrelationId }, crmOrigin);
    });
  }

  window.addEventListener('message', (event) => {
    if (event.origin !== crmOrigin || event.source !== window.top) return;
    const m = event.data || {};
    if (m.messageType === 'event') {
      for (const h of handlers.get(String(m.eventName).toLowerCase()) || []) h(m.eventData);
      return;
    }
    const p = pending.get(m.messageCorrelationId);
    if (!p) return;
    pending.delete(m.messageCorrelationId);
    if (m.messageOutcome === 'success') p.resolve(m.messageData); else p.reject(m.messageData);
  });

  const api = {
    addHandler(name, handler) {
      const key = String(name).toLowerCase();
      if (!handlers.has(key)) handlers.set(key, []);
      handlers.get(key).push(handler);
      send('addHandler', [name]);
      return undefined;
    },
    removeHandler(name, handler) {
      const list = handlers.get(String(name).toLowerCase()) || [];
      const i = list.indexOf(handler);
      if (i >= 0) list.splice(i, 1);
      return undefined;
    },
  };
  const v1Apis = ['setClickToAct', 'getClickToAct', 'setMode', 'getMode', 'setWidth', 'getWidth',
    'getEnvironment', 'searchAndOpenRecords', 'createRecord', 'retrieveRecord', 'updateRecord',
    'deleteRecord', 'openForm', 'renderSearchPage', 'getEntityMetadata', 'raiseEvent', 'updateContext'];
  const v2Apis = ['notifyEvent', 'cancelEvent', 'createSession', 'getSession', 'getFocusedSession',
    'getAllSessions', 'canCreateSession', 'requestFocusSession', 'setSessionTitle', 'setPresence',
    'getPresence', 'notifyNewActivity', 'notifyKpiBreach', 'createTab', 'focusTab', 'closeTab'];
  for (const name of v1 ? v1Apis : v1Apis.concat(v2Apis)) {
    api[name] = (...args) => send(name, args);
  }
  window.Microsoft = window.Microsoft || {};
  window.Microsoft.CIFramework = api;
  setTimeout(() => window.dispatchEvent(new CustomEvent('CIFInitDone', { detail: [crmOrigin] })), 0);
})();
