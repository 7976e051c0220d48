// DOM wiring: sign-in, session list, dashboard, terminal and status bar around the AttachController.
// The API token lives only in the ApiClient held by this module: no storage, no cookie, no URL.

import '@xterm/xterm/css/xterm.css';
import './style.css';

import { ApiClient, ApiError, attachPath, type SessionSummary, wsURL } from './api';
import { AttachController, openBrowserSocket } from './attach';
import { DashboardView } from './dashboard-view';
import { installCspStyleShim } from './csp-compat';
import {
  type AttachState,
  canAcquire,
  canRelease,
  canRequest,
  canSendInput,
  displayName,
  rateLimited,
  type Requester,
  type Role,
  sessionGone,
} from './protocol';
import {
  connStateText,
  holderText,
  idleLevel,
  idleText,
  idleWarningText,
  moderationText,
  participantsText,
  retryText,
  roleText,
  whoamiText,
} from './status';
import { RecordingsUi } from './recordings-ui';
import { TerminalView } from './terminal-view';

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el as T;
}

const ui = {
  whoami: byId('whoami'),
  signout: byId<HTMLButtonElement>('signout'),
  signinPanel: byId('signin-panel'),
  token: byId<HTMLInputElement>('token'),
  signin: byId<HTMLButtonElement>('signin'),
  signinError: byId('signin-error'),
  sessionsPanel: byId('sessions-panel'),
  refresh: byId<HTMLButtonElement>('refresh'),
  newSession: byId<HTMLButtonElement>('new-session'),
  sessions: byId<HTMLUListElement>('sessions'),
  sessionsEmpty: byId('sessions-empty'),
  sessionsError: byId('sessions-error'),
  openDashboard: byId<HTMLButtonElement>('open-dashboard'),
  dashboardPanel: byId('dashboard-panel'),
  dashboardBack: byId<HTMLButtonElement>('dashboard-back'),
  dashboardCards: byId('dashboard-cards'),
  dashboardEmpty: byId('dashboard-empty'),
  dashboardStatus: byId('dashboard-status'),
  attachPanel: byId('attach-panel'),
  connState: byId('conn-state'),
  role: byId('role'),
  holder: byId('holder'),
  participants: byId('participants'),
  idle: byId('idle'),
  moderationField: byId('moderation-field'),
  moderation: byId('moderation'),
  acquire: byId<HTMLButtonElement>('acquire'),
  release: byId<HTMLButtonElement>('release'),
  retry: byId<HTMLButtonElement>('retry'),
  startNew: byId<HTMLButtonElement>('start-new'),
  idleWarning: byId('idle-warning'),
  detach: byId<HTMLButtonElement>('detach'),
  closeReason: byId('close-reason'),
  notice: byId('notice'),
  controlRequests: byId('control-requests'),
  terminal: byId('terminal'),
};

const recordings = new RecordingsUi(
  {
    panel: byId('recordings-panel'),
    session: byId('recordings-session'),
    back: byId<HTMLButtonElement>('recordings-back'),
    list: byId<HTMLUListElement>('recordings'),
    empty: byId('recordings-empty'),
    error: byId('recordings-error'),
    player: byId('player'),
    play: byId<HTMLButtonElement>('player-play'),
    seek: byId<HTMLInputElement>('player-seek'),
    time: byId('player-time'),
    speed: byId<HTMLSelectElement>('player-speed'),
    skipIdle: byId<HTMLInputElement>('player-skip-idle'),
    download: byId<HTMLButtonElement>('player-download'),
    terminal: byId('player-terminal'),
  },
  () => api,
  (err) => errorText(err),
);

/** The only reference to the token (inside ApiClient's private field). */
let api: ApiClient | null = null;

function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.status} ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

// ---- terminal ----------------------------------------------------------------------------

installCspStyleShim(document);
const view = new TerminalView(ui.terminal, {
  cursorBlink: true,
  disableStdin: true,
  fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
  fontSize: 14,
  scrollback: 5000,
});
const term = view.term;

// ---- attach controller ---------------------------------------------------------------------

const controller = new AttachController(
  {
    requestTicket: async (sessionId, role, resumeFrom) => {
      if (!api) throw new ApiError(401, 'unauthorized', 'Not signed in.');
      await api.requestCookieTicket(sessionId, role, resumeFrom);
    },
    openSocket: (sessionId, handlers) => openBrowserSocket(wsURL(attachPath(sessionId)), handlers),
    now: () => Date.now(),
    setTimer: (fn, ms) => window.setTimeout(fn, ms),
    clearTimer: (h) => window.clearTimeout(h as number),
    // Web Locks exist in secure contexts (https, localhost, 127.0.0.1); elsewhere run unserialised.
    ...('locks' in navigator
      ? { exclusive: async (key: string, fn: () => Promise<void>): Promise<void> => { await navigator.locks.request(key, fn); } }
      : {}),
  },
  {
    onState: (state) => render(state),
    onOutput: (bytes, rendered) => view.write(bytes, rendered),
    onReset: (size) => view.reset(size),
    onSize: (size) => view.sessionSize(size),
    getSize: () => (view.opened ? { cols: term.cols, rows: term.rows } : null),
  },
);

term.onData((data) => {
  controller.sendInput(data);
});
// Keystrokes that go nowhere (observing, or someone else holds control) say so.
ui.terminal.addEventListener(
  'keydown',
  (ev) => {
    if (!canSendInput(controller.state) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) controller.typedWhileOff();
  },
  { capture: true },
);
term.onResize(({ cols, rows }) => {
  controller.sendResize(cols, rows);
});

function render(state: AttachState, now = Date.now()): void {
  ui.connState.textContent = connStateText(state, now);
  ui.connState.dataset.state = state.phase;
  ui.role.textContent = roleText(state);
  ui.holder.textContent = holderText(state);
  ui.whoami.textContent = whoamiText(state, api !== null);
  ui.participants.textContent = participantsText(state);
  ui.moderation.textContent = moderationText(state);
  ui.moderation.dataset.state = state.phase === 'connected' ? state.moderation?.state ?? '' : '';
  ui.moderationField.hidden = ui.moderation.textContent === '';
  ui.idle.textContent = idleText(state, now);
  ui.idle.dataset.level = idleLevel(state, now);
  ui.idleWarning.textContent = idleWarningText(state, now) ?? '';
  ui.closeReason.textContent = state.closeMessage ?? '';
  ui.notice.textContent = state.phase === 'connected' ? state.notice ?? '' : '';
  ui.acquire.disabled = !canAcquire(state) && !canRequest(state);
  renderRequests(state.requests);
  ui.release.disabled = !canRelease(state);
  const ended = state.phase === 'failed' || state.phase === 'closed';
  const gone = sessionGone(state);
  ui.retry.hidden = !ended || gone;
  ui.retry.disabled = rateLimited(state, now);
  ui.retry.textContent = retryText(state, now);
  ui.startNew.hidden = !gone;
  const input = canSendInput(state);
  if (term.options.disableStdin === input) term.options.disableStdin = !input;
  ui.terminal.dataset.input = input ? 'enabled' : 'disabled';
  // The holder's window sets the PTY size; everyone else shows the session at its size.
  view.setMode(input ? 'fit' : 'session');
}

/** The holder's prompts: one per driver asking for control, with Grant and Deny. */
let shownRequests: readonly Requester[] = [];
function renderRequests(requests: readonly Requester[]): void {
  if (requests === shownRequests) return;
  shownRequests = requests;
  ui.controlRequests.replaceChildren(
    ...requests.map((r) => {
      const row = document.createElement('div');
      row.className = 'control-request';
      row.dataset.testid = 'control-request';
      row.dataset.from = r.connectionId;
      const text = document.createElement('span');
      text.textContent = `${displayName(r) ?? 'A driver'} asks for control.`;
      const grant = document.createElement('button');
      grant.type = 'button';
      grant.className = 'grant';
      grant.textContent = 'Give control';
      grant.addEventListener('click', () => controller.answer(r.connectionId, true));
      const deny = document.createElement('button');
      deny.type = 'button';
      deny.className = 'deny';
      deny.textContent = 'Deny';
      deny.addEventListener('click', () => controller.answer(r.connectionId, false));
      row.append(text, grant, deny);
      return row;
    }),
  );
}

// Countdowns (reconnect, idle deadline) tick once a second.
window.setInterval(() => {
  if (controller.state.phase !== 'idle') render(controller.state);
}, 1000);

ui.acquire.addEventListener('click', () => {
  if (!controller.acquire()) controller.request();
});
ui.release.addEventListener('click', () => controller.release());
ui.retry.addEventListener('click', () => controller.retry());
ui.startNew.addEventListener('click', async () => {
  // The old session is gone: start a fresh one and attach to it in the same role.
  const role = controller.state.requestedRole ?? 'driver';
  if (!api) return;
  ui.startNew.disabled = true;
  try {
    const s = await api.createSession();
    attach(s.id, role);
  } catch (err) {
    ui.closeReason.textContent = `Could not create a session: ${errorText(err)}`;
  } finally {
    ui.startNew.disabled = false;
  }
});
ui.detach.addEventListener('click', () => {
  controller.stop();
  if (fromDashboard) showDashboard();
  else showSessions();
});

/** Whether Detach goes back to the dashboard (the attach was started there). */
let fromDashboard = false;

function attach(sessionId: string, role: Role, viaDashboard = false): void {
  fromDashboard = viaDashboard;
  dashboard.stop();
  ui.dashboardPanel.hidden = true;
  ui.sessionsPanel.hidden = true;
  ui.attachPanel.hidden = false;
  view.open();
  view.clear();
  controller.start(sessionId, role);
  term.focus();
}

// ---- sessions --------------------------------------------------------------------------------

function sessionItem(s: SessionSummary): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.testid = 'session';
  li.dataset.sessionId = s.id;
  const id = document.createElement('code');
  id.className = 'session-id';
  id.textContent = s.id;
  li.append(id);
  const label = [s.name, s.command?.join(' '), s.state].filter((x): x is string => !!x).join(' · ');
  if (label) {
    const span = document.createElement('span');
    span.className = 'muted';
    span.textContent = label;
    li.append(span);
  }
  for (const role of ['driver', 'observer'] as const) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `attach-${role}`;
    b.dataset.testid = `attach-${role}`;
    b.textContent = role === 'driver' ? 'Attach as driver' : 'Attach as observer';
    b.addEventListener('click', () => attach(s.id, role));
    li.append(b);
  }
  const rec = document.createElement('button');
  rec.type = 'button';
  rec.dataset.testid = 'recordings';
  rec.textContent = 'Recordings';
  rec.addEventListener('click', () => {
    ui.sessionsPanel.hidden = true;
    void recordings.show(s.id);
  });
  li.append(rec);
  return li;
}

async function loadSessions(): Promise<void> {
  if (!api) return;
  ui.sessionsError.textContent = '';
  try {
    const list = await api.listSessions();
    ui.sessions.replaceChildren(...list.map(sessionItem));
    ui.sessionsEmpty.hidden = list.length > 0;
  } catch (err) {
    ui.sessionsError.textContent = `Could not list sessions: ${errorText(err)}`;
    if (err instanceof ApiError && err.status === 401) signOut('The API token was rejected (401).');
  }
}

function showSessions(): void {
  recordings.stop();
  dashboard.stop();
  ui.attachPanel.hidden = true;
  ui.dashboardPanel.hidden = true;
  ui.sessionsPanel.hidden = false;
  void loadSessions();
}

// ---- dashboard -----------------------------------------------------------------------------

const dashboard = new DashboardView(ui.dashboardCards, ui.dashboardEmpty, ui.dashboardStatus, {
  attach: (sessionId, role) => attach(sessionId, role, true),
  unauthorized: () => signOut('The API token was rejected (401).'),
});

function showDashboard(): void {
  if (!api) return;
  ui.attachPanel.hidden = true;
  ui.sessionsPanel.hidden = true;
  ui.dashboardPanel.hidden = false;
  dashboard.start(api);
}

ui.openDashboard.addEventListener('click', () => showDashboard());
ui.dashboardBack.addEventListener('click', () => showSessions());

ui.refresh.addEventListener('click', () => void loadSessions());
byId<HTMLButtonElement>('recordings-back').addEventListener('click', () => showSessions());
ui.newSession.addEventListener('click', async () => {
  if (!api) return;
  ui.newSession.disabled = true;
  ui.sessionsError.textContent = '';
  try {
    const s = await api.createSession();
    await loadSessions();
    ui.sessions.querySelector<HTMLElement>(`li[data-session-id="${CSS.escape(s.id)}"]`)?.classList.add('new');
  } catch (err) {
    ui.sessionsError.textContent = `Could not create a session: ${errorText(err)}`;
  } finally {
    ui.newSession.disabled = false;
  }
});

// ---- sign-in -------------------------------------------------------------------------------

async function signIn(): Promise<void> {
  const token = ui.token.value.trim();
  ui.token.value = '';
  ui.signinError.textContent = '';
  if (!token) {
    ui.signinError.textContent = 'Paste an API token first.';
    return;
  }
  const candidate = new ApiClient(token);
  try {
    await candidate.listSessions();
  } catch (err) {
    ui.signinError.textContent = `Sign-in failed: ${errorText(err)}`;
    return;
  }
  api = candidate;
  ui.signinPanel.hidden = true;
  ui.signout.hidden = false;
  ui.whoami.textContent = whoamiText(controller.state, true);
  showSessions();
}

function signOut(message = ''): void {
  controller.stop();
  recordings.stop();
  dashboard.stop();
  ui.dashboardPanel.hidden = true;
  ui.dashboardCards.replaceChildren();
  api = null;
  ui.sessions.replaceChildren();
  ui.attachPanel.hidden = true;
  ui.sessionsPanel.hidden = true;
  ui.signinPanel.hidden = false;
  ui.signout.hidden = true;
  ui.whoami.textContent = '';
  ui.signinError.textContent = message;
  if (view.opened) view.clear();
}

ui.signin.addEventListener('click', () => void signIn());
ui.token.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') void signIn();
});
ui.signout.addEventListener('click', () => signOut());
render(controller.state);
