//! `attachd sessions list|create|delete`: the session API as tables for people and, with
//! `--json`, the API's own JSON for scripts.

use crate::cli::api::{parse_server, ApiClient};
use crate::cli::args::{SessionsArgs, SessionsCmd};
use crate::cli::token::ApiToken;
use crate::cli::{explain, table, terminal::notice, tls};
use crate::http::api::CreateSession;
use crate::sessions::SessionView;

/// Runs one `sessions` subcommand; 0 on success, 1 when the server refused, 2 for setup.
pub async fn run(args: SessionsArgs) -> u8 {
    let api = match client(&args) {
        Ok(api) => api,
        Err(msg) => {
            notice(&msg);
            return 2;
        }
    };
    let printed = match args.cmd {
        SessionsCmd::List { json } => api.list_sessions().await.map(|(list, raw)| {
            if json {
                pretty(&raw)
            } else if list.sessions.is_empty() {
                "no sessions\n".to_string()
            } else {
                sessions_table(&list.sessions)
            }
        }),
        SessionsCmd::Create {
            name,
            json,
            quiet,
            moderated,
            command,
        } => {
            let req = CreateSession {
                command: (!command.is_empty()).then_some(command),
                name,
                policy: moderated.then_some(crate::sessions::SessionPolicy { moderated }),
            };
            api.create_session(&req).await.map(|(s, raw)| {
                if json {
                    pretty(&raw)
                } else if quiet {
                    format!("{}\n", s.id)
                } else {
                    sessions_table(std::slice::from_ref(&s))
                }
            })
        }
        SessionsCmd::Delete { session_id, json } => {
            api.delete_session(&session_id).await.map(|()| {
                if json {
                    pretty(&serde_json::json!({"id": session_id, "deleted": true}))
                } else {
                    format!("deleted {session_id}\n")
                }
            })
        }
    };
    match printed {
        Ok(text) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error of ours.
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            0
        }
        Err(f) => {
            notice(&explain::failure(&f));
            1
        }
    }
}

fn client(args: &SessionsArgs) -> Result<ApiClient, String> {
    let base = parse_server(&args.server.server)?;
    let token = ApiToken::load(args.server.token_file.as_deref())?;
    let tls = tls::client_config(args.server.cacert.as_deref())?;
    ApiClient::new(&base, token, tls).map_err(|f| explain::failure(&f))
}

fn pretty(v: &serde_json::Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
}

fn sessions_table(sessions: &[SessionView]) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.name.clone().unwrap_or_else(|| "-".into()),
                s.created_by.clone(),
                s.created_at.clone(),
                s.backend.clone(),
                s.command.join(" "),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "NAME",
            "CREATED BY",
            "CREATED AT",
            "BACKEND",
            "COMMAND",
        ],
        &rows,
    )
}
