// A stand-in for Salesforce's opencti_min.js (dev mode only, switchboard-hub /hosts/opencti).
// sforce.opencti.<method>({...args, callback}) posts {openCti: method, args} to the parent page
// (this script's origin) and calls back with {success, returnValue, errors}; the parent fires
// listeners (onClickToDial, onNavigationChange) with {openCtiEvent, payload}.
(function () {
  'use strict';
  const origin = new URL(document.currentScript.src).origin;
  const pending = new Map();
  const listeners = new Map();
  let next = 0;
  function send(method, args) {
    const { callback, listener, ...rest } = args || {};
    const id = 'octi-' + (++next);
    if (callback) pending.set(id, callback);
    window.parent.postMessage({ openCti: method, id, args: rest }, origin);
  }
  window.addEventListener('message', (event) => {
    if (event.origin !== origin || event.source !== window.parent) return;
    const m = event.data || {};
    if (m.openCtiEvent) {
      for (const l of listeners.get(m.openCtiEvent) || []) l(m.payload);
    } else if (m.id && pending.has(m.id)) {
      const cb = pending.get(m.id);
      pending.delete(m.id);
      cb({ success: m.success !== false, returnValue: m.returnValue ?? null, errors: m.errors ?? null });
    }
  });
  const api = {
    SCREENPOP_TYPE: { SOBJECT: 'sobject', URL: 'url', OBJECTHOME: 'objecthome', LIST: 'list',
      SEARCH: 'search', NEW_RECORD_MODAL: 'newRecord', FLOW: 'flow' },
    CALL_TYPE: { INBOUND: 'inbound', OUTBOUND: 'outbound', INTERNAL: 'internal' },
  };
  for (const name of ['onClickToDial', 'onNavigationChange']) {
    api[name] = (args) => {
      if (!listeners.has(name)) listeners.set(name, []);
      listeners.get(name).push(args.listener);
      send(name, args);
    };
  }
  for (const name of ['enableClickToDial', 'disableClickToDial', 'screenPop', 'searchAndScreenPop',
    'saveLog', 'refreshView', 'setSoftphonePanelVisibility', 'isSoftphonePanelVisible',
    'setSoftphonePanelHeight', 'setSoftphonePanelWidth', 'setSoftphonePanelLabel',
    'getAppViewInfo', 'getCallCenterSettings', 'getSoftphoneLayout', 'runApex',
    'notifyInitializationComplete']) {
    api[name] = (args) => send(name, args);
  }
  window.sforce = window.sforce || {};
  window.sforce.opencti = api;
})();
