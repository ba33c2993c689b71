//! encrypt, decrypt, re-encrypt, generate-data-key,
//! generate-data-key-without-plaintext, generate-random.

use super::{Ctx, reply};
use crate::args::{
    ContextArgs, DataKeyArgs, DecryptArgs, EncryptArgs, GenerateDataKeyArgs, GenerateRandomArgs,
    ReEncryptArgs,
};
use crate::failure::Failure;
use crate::input;
use crate::output::Reply;
use crate::shorthand::BinaryFormat;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kmsd_client::*;
use zeroize::Zeroizing;

fn context(a: &ContextArgs) -> Result<EncryptionContext, Failure> {
    input::context("--encryption-context", a.encryption_context.as_deref())
}

fn grant_tokens(values: &[String]) -> Result<Vec<String>, Failure> {
    input::list("--grant-tokens", values)
}

/// The `--plaintext-only` line: the plaintext in base64.
fn plaintext_line(plaintext: &SecretBytes) -> Reply {
    Reply::Line(Zeroizing::new(B64.encode(plaintext.expose())))
}

fn encrypt_request(a: EncryptArgs, format: BinaryFormat) -> Result<EncryptRequest, Failure> {
    Ok(EncryptRequest {
        plaintext: SecretBytes::new(input::binary("--plaintext", &a.plaintext, format)?),
        encryption_context: context(&a.context)?,
        grant_tokens: grant_tokens(&a.context.grant_tokens)?,
        key_id: a.key_id,
    })
}

pub fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(encrypt_request(a, ctx.binary_format)?)?)
}

fn decrypt_request(a: &DecryptArgs, format: BinaryFormat) -> Result<DecryptRequest, Failure> {
    Ok(DecryptRequest {
        ciphertext_blob: Blob(input::binary(
            "--ciphertext-blob",
            &a.ciphertext_blob,
            format,
        )?),
        encryption_context: context(&a.context)?,
        key_id: a.key_id.clone(),
        grant_tokens: grant_tokens(&a.context.grant_tokens)?,
    })
}

pub fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<Reply, Failure> {
    let response = ctx.call(decrypt_request(&a, ctx.binary_format)?)?;
    if a.plaintext_only {
        return Ok(plaintext_line(&response.plaintext));
    }
    reply(&response)
}

fn re_encrypt_request(a: ReEncryptArgs, format: BinaryFormat) -> Result<ReEncryptRequest, Failure> {
    Ok(ReEncryptRequest {
        ciphertext_blob: Blob(input::binary(
            "--ciphertext-blob",
            &a.ciphertext_blob,
            format,
        )?),
        source_encryption_context: input::context(
            "--source-encryption-context",
            a.source_encryption_context.as_deref(),
        )?,
        destination_encryption_context: input::context(
            "--destination-encryption-context",
            a.destination_encryption_context.as_deref(),
        )?,
        grant_tokens: grant_tokens(&a.grant_tokens)?,
        source_key_id: a.source_key_id,
        destination_key_id: a.destination_key_id,
    })
}

pub fn re_encrypt(ctx: &Ctx, a: ReEncryptArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(re_encrypt_request(a, ctx.binary_format)?)?)
}

fn data_key_request(a: DataKeyArgs) -> Result<GenerateDataKeyRequest, Failure> {
    Ok(GenerateDataKeyRequest {
        encryption_context: context(&a.context)?,
        grant_tokens: grant_tokens(&a.context.grant_tokens)?,
        key_id: a.key_id,
        key_spec: a.key_spec,
        number_of_bytes: a.number_of_bytes,
    })
}

pub fn generate_data_key(ctx: &Ctx, a: GenerateDataKeyArgs) -> Result<Reply, Failure> {
    let response = ctx.call(data_key_request(a.key)?)?;
    if a.plaintext_only {
        return Ok(plaintext_line(&response.plaintext));
    }
    reply(&response)
}

pub fn generate_data_key_without_plaintext(ctx: &Ctx, a: DataKeyArgs) -> Result<Reply, Failure> {
    let r = data_key_request(a)?;
    reply(&ctx.call(GenerateDataKeyWithoutPlaintextRequest {
        key_id: r.key_id,
        encryption_context: r.encryption_context,
        key_spec: r.key_spec,
        number_of_bytes: r.number_of_bytes,
        grant_tokens: r.grant_tokens,
    })?)
}

pub fn generate_random(ctx: &Ctx, a: GenerateRandomArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(GenerateRandomRequest {
        number_of_bytes: a.number_of_bytes,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("kmsctl").chain(args.iter().copied()))
            .unwrap()
            .kms()
    }

    #[test]
    fn encrypt_a_file_as_in_the_lab() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret.txt");
        std::fs::write(&file, b"lab secret\n\x00\xff").unwrap();
        let fileb = format!("fileb://{}", file.display());
        let Command::Encrypt(a) = command(&[
            "encrypt",
            "--key-id",
            "alias/lab",
            "--plaintext",
            &fileb,
            "--encryption-context",
            "Purpose=Lab,App=kms-demo",
            "--grant-tokens",
            "t1",
            "t2",
        ]) else {
            panic!("not encrypt")
        };
        let r = encrypt_request(a, BinaryFormat::Base64).unwrap();
        assert_eq!(r.key_id, "alias/lab");
        assert_eq!(r.plaintext.expose(), b"lab secret\n\x00\xff");
        assert_eq!(r.encryption_context.len(), 2);
        assert_eq!(r.encryption_context["App"], "kms-demo");
        assert_eq!(r.grant_tokens, ["t1", "t2"]);
    }

    #[test]
    fn inline_plaintext_is_base64_as_in_aws_cli_v2() {
        let Command::Encrypt(a) = command(&["encrypt", "--key-id", "k", "--plaintext", "aGVsbG8="])
        else {
            panic!("not encrypt")
        };
        assert_eq!(
            encrypt_request(a, BinaryFormat::Base64)
                .unwrap()
                .plaintext
                .expose(),
            b"hello"
        );

        let Command::Encrypt(a) =
            command(&["encrypt", "--key-id", "k", "--plaintext", "hello world"])
        else {
            panic!("not encrypt")
        };
        let e = encrypt_request(a, BinaryFormat::Base64)
            .err()
            .expect("not base64");
        assert_eq!(e.exit_code(), 252);
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--plaintext': Invalid base64"),
            "{e}"
        );
    }

    #[test]
    fn raw_in_base64_out_takes_inline_plaintext_as_is() {
        let cli = Cli::try_parse_from([
            "kmsctl",
            "--cli-binary-format",
            "raw-in-base64-out",
            "encrypt",
            "--key-id",
            "k",
            "--plaintext",
            "hello world",
        ])
        .unwrap();
        let format = cli.cli_binary_format;
        let Command::Encrypt(a) = cli.kms() else {
            panic!("not encrypt")
        };
        assert_eq!(
            encrypt_request(a, format).unwrap().plaintext.expose(),
            b"hello world"
        );
    }

    #[test]
    fn decrypt_request_from_flags() {
        let Command::Decrypt(a) = command(&[
            "decrypt",
            "--ciphertext-blob",
            "AQID",
            "--key-id",
            "k",
            "--encryption-context",
            r#"{"Purpose":"Lab"}"#,
            "--plaintext-only",
        ]) else {
            panic!("not decrypt")
        };
        assert!(a.plaintext_only);
        let r = decrypt_request(&a, BinaryFormat::Base64).unwrap();
        assert_eq!(r.ciphertext_blob, Blob(vec![1, 2, 3]));
        assert_eq!(r.key_id.as_deref(), Some("k"));
        assert_eq!(r.encryption_context["Purpose"], "Lab");
        assert!(r.grant_tokens.is_empty());
    }

    #[test]
    fn re_encrypt_contexts_name_their_flags() {
        let Command::ReEncrypt(a) = command(&[
            "re-encrypt",
            "--ciphertext-blob",
            "AQID",
            "--destination-key-id",
            "k2",
            "--source-encryption-context",
            "A=1",
            "--destination-encryption-context",
            "B",
        ]) else {
            panic!("not re-encrypt")
        };
        let e = re_encrypt_request(a, BinaryFormat::Base64).expect_err("bad destination context");
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--destination-encryption-context'"),
            "{e}"
        );
    }

    #[test]
    fn data_key_request_from_flags() {
        let Command::GenerateDataKey(a) = command(&[
            "generate-data-key",
            "--key-id",
            "k",
            "--number-of-bytes",
            "64",
            "--encryption-context",
            "A=1",
        ]) else {
            panic!("not generate-data-key")
        };
        let r = data_key_request(a.key).unwrap();
        assert_eq!((r.number_of_bytes, r.key_spec), (Some(64), None));
        assert_eq!(r.encryption_context["A"], "1");
    }

    #[test]
    fn plaintext_line_is_base64() {
        let Reply::Line(l) = plaintext_line(&SecretBytes::from_slice(b"\x00\x01hi")) else {
            panic!("not a line")
        };
        assert_eq!(l.as_str(), "AAFoaQ==");
    }
}
