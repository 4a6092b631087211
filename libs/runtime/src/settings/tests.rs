//! Loading and validating settings.

use super::*;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
struct ExampleSection {
    token_ttl_seconds: u64,
}

const SPEC: ServiceSpec = ServiceSpec {
    name: "example",
    config_section: "example",
    grpc_service_name: "mcr.example.v1.Example",
    default_grpc_port: 50999,
    default_admin_port: 9199,
};

fn environment(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn zero_configuration_gives_local_defaults() -> Result<(), SettingsError> {
    let settings = Settings::<ExampleSection>::load(&SPEC, &environment(&[]))?;
    assert_eq!(settings.runtime.grpc.port, 50999);
    assert_eq!(settings.runtime.admin.port, 9199);
    assert_eq!(settings.runtime.database.name, "mcr_example");
    assert_eq!(settings.runtime.nats.url, "nats://127.0.0.1:4222");
    assert_eq!(settings.runtime.telemetry.log_format, LogFormat::Human);
    assert_eq!(settings.service, ExampleSection::default());
    Ok(())
}

#[test]
fn environment_overrides_defaults_and_reaches_the_service_section() -> Result<(), SettingsError> {
    let settings = Settings::<ExampleSection>::load(
        &SPEC,
        &environment(&[
            ("MCR_GRPC__PORT", "6001"),
            ("MCR_TELEMETRY__LOG_FORMAT", "json"),
            ("MCR_EXAMPLE__TOKEN_TTL_SECONDS", "300"),
            ("UNRELATED", "ignored"),
        ]),
    )?;
    assert_eq!(settings.runtime.grpc.port, 6001);
    assert_eq!(settings.runtime.telemetry.log_format, LogFormat::Json);
    assert_eq!(settings.service.token_ttl_seconds, 300);
    Ok(())
}

#[test]
fn file_overrides_defaults_and_environment_overrides_file() -> Result<(), Box<dyn std::error::Error>>
{
    let path = std::env::temp_dir().join(format!("mcr-settings-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[grpc]\nport = 7001\n[admin]\nport = 7002\n[example]\ntoken_ttl_seconds = 60\n",
    )?;
    let path_text = path.display().to_string();
    let settings = Settings::<ExampleSection>::load(
        &SPEC,
        &environment(&[
            (CONFIG_FILE_VARIABLE, &path_text),
            ("MCR_ADMIN__PORT", "7003"),
        ]),
    )?;
    std::fs::remove_file(&path)?;
    assert_eq!(settings.runtime.grpc.port, 7001);
    assert_eq!(settings.runtime.admin.port, 7003);
    assert_eq!(settings.service.token_ttl_seconds, 60);
    Ok(())
}

#[test]
fn a_bad_value_names_its_key() {
    let error =
        Settings::<ExampleSection>::load(&SPEC, &environment(&[("MCR_GRPC__PORT", "not-a-port")]))
            .expect_err("a non-numeric port must be rejected");
    let message = error.to_string();
    assert!(
        message.contains("grpc.port"),
        "message should name the key: {message}"
    );
}

#[test]
fn an_out_of_range_value_names_its_key() {
    let error =
        Settings::<ExampleSection>::load(&SPEC, &environment(&[("MCR_GRPC__PORT", "70000")]))
            .expect_err("a port above 65535 must be rejected");
    assert!(error.to_string().contains("grpc.port"), "{error}");
}

#[test]
fn a_rejected_value_says_what_to_do() {
    let error =
        Settings::<ExampleSection>::load(&SPEC, &environment(&[("MCR_NATS__NAMESPACE", "a.b")]))
            .expect_err("a namespace with a dot would split subjects");
    let message = error.to_string();
    assert!(
        message.contains("nats.namespace") && message.contains("letters"),
        "{message}"
    );
}

#[test]
fn streams_per_connection_are_limited_by_default_and_zero_is_refused() -> Result<(), SettingsError>
{
    let settings = Settings::<ExampleSection>::load(&SPEC, &environment(&[]))?;
    assert_eq!(settings.runtime.grpc.max_concurrent_streams, 200);
    assert!(
        settings.runtime.grpc.tls.is_none(),
        "TLS is off unless configured"
    );
    let error = Settings::<ExampleSection>::load(
        &SPEC,
        &environment(&[("MCR_GRPC__MAX_CONCURRENT_STREAMS", "0")]),
    )
    .expect_err("zero streams would refuse every call");
    assert!(
        error.to_string().contains("grpc.max_concurrent_streams"),
        "{error}"
    );
    Ok(())
}

#[test]
fn nats_credentials_come_from_the_nats_section_and_are_never_printed() -> Result<(), SettingsError>
{
    let settings = Settings::<ExampleSection>::load(
        &SPEC,
        &environment(&[
            ("MCR_NATS__USER", "aggregator"),
            ("MCR_NATS__PASSWORD", "hunter2-secret"),
            ("MCR_NATS__TLS__REQUIRE_TLS", "true"),
        ]),
    )?;
    let security = &settings.runtime.nats_security;
    assert_eq!(security.user.as_deref(), Some("aggregator"));
    assert!(security.tls.require_tls);
    let printed = format!("{settings:?}");
    assert!(!printed.contains("hunter2-secret"), "{printed}");
    let error = Settings::<ExampleSection>::load(
        &SPEC,
        &environment(&[("MCR_NATS__USER", "aggregator"), ("MCR_NATS__TOKEN", "t")]),
    )
    .expect_err("two ways to authenticate");
    assert!(error.to_string().contains("nats"), "{error}");
    Ok(())
}

#[test]
fn a_missing_settings_file_is_an_error_naming_it() {
    let error = Settings::<ExampleSection>::load(
        &SPEC,
        &environment(&[(CONFIG_FILE_VARIABLE, "/nonexistent/mcr.toml")]),
    )
    .expect_err("a named file that does not exist must fail start-up");
    assert!(
        error.to_string().contains("/nonexistent/mcr.toml"),
        "{error}"
    );
}
