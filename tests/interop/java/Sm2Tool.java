// SM2 signing and verification with BouncyCastle, for zhengyin's interop tests.
//
// Compiled by tests/interop/test_bouncycastle_sm2.py against Debian's bcprov.jar:
//   javac -cp /usr/share/java/bcprov.jar -d OUT Sm2Tool.java
//
// Commands (hex "-" stands for an empty value; uid "-" means BouncyCastle's default ID):
//   verify <spki-der-hex-or-file> <msg-file> <sig-file> [uid-hex]
//       exit 0 if the DER signature is valid, 1 if not, 2 on a usage or key error.
//   sign <msg-file> <spki-out> <sig-out>
//       a new SM2 key (KeyPairGenerator "EC", sm2p256v1), "SM3withSM2" with the default ID;
//       writes the public key (SubjectPublicKeyInfo DER) and the signature (DER).
//   batch <jobs-file>
//       one JVM for many checks; one output line per job line:
//         verify <spki-hex> <msg-hex> <sig-hex> <uid-hex|->  ->  ok | bad | disagree | error:...
//         gen <msg-hex>                                      ->  <spki-hex> <sig-hex>
//         signd <d-hex> <msg-hex> <uid-hex|->                ->  <spki-hex> <sig-hex>
//       "verify" checks with the lightweight SM2Signer and, for the default ID, with the JCA
//       "SM3withSM2" Signature too; "disagree" means the two APIs gave different answers.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.SignatureException;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;

import org.bouncycastle.asn1.gm.GMNamedCurves;
import org.bouncycastle.asn1.gm.GMObjectIdentifiers;
import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.crypto.CipherParameters;
import org.bouncycastle.crypto.params.AsymmetricKeyParameter;
import org.bouncycastle.crypto.params.ECNamedDomainParameters;
import org.bouncycastle.crypto.params.ECPrivateKeyParameters;
import org.bouncycastle.crypto.params.ECPublicKeyParameters;
import org.bouncycastle.crypto.params.ParametersWithID;
import org.bouncycastle.crypto.params.ParametersWithRandom;
import org.bouncycastle.crypto.signers.SM2Signer;
import org.bouncycastle.crypto.util.PublicKeyFactory;
import org.bouncycastle.crypto.util.SubjectPublicKeyInfoFactory;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.math.ec.ECPoint;
import org.bouncycastle.util.encoders.Hex;

public final class Sm2Tool {
    private static final X9ECParameters X9 = GMNamedCurves.getByName("sm2p256v1");
    private static final ECNamedDomainParameters DOMAIN =
            new ECNamedDomainParameters(GMObjectIdentifiers.sm2p256v1, X9);
    private static final SecureRandom RNG = new SecureRandom();

    private Sm2Tool() {
    }

    private static byte[] unhex(String s) {
        return s.equals("-") ? new byte[0] : Hex.decode(s);
    }

    private static String hex(byte[] b) {
        return b.length == 0 ? "-" : Hex.toHexString(b);
    }

    static boolean verifyLightweight(byte[] spki, byte[] msg, byte[] sig, byte[] uid) throws IOException {
        AsymmetricKeyParameter pub = PublicKeyFactory.createKey(spki);
        SM2Signer signer = new SM2Signer();
        signer.init(false, uid == null ? pub : new ParametersWithID(pub, uid));
        signer.update(msg, 0, msg.length);
        return signer.verifySignature(sig);
    }

    static boolean verifyJca(byte[] spki, byte[] msg, byte[] sig) throws GeneralSecurityException {
        PublicKey key = KeyFactory.getInstance("EC", "BC").generatePublic(new X509EncodedKeySpec(spki));
        Signature verifier = Signature.getInstance("SM3withSM2", "BC");
        verifier.initVerify(key);
        verifier.update(msg);
        try {
            return verifier.verify(sig);
        } catch (SignatureException e) {
            return false;  // malformed signature encoding
        }
    }

    /** "ok", "bad" or "disagree" (the lightweight and JCA APIs differ). */
    static String verify(byte[] spki, byte[] msg, byte[] sig, byte[] uid) throws Exception {
        boolean light = verifyLightweight(spki, msg, sig, uid);
        if (uid == null) {
            boolean jca = verifyJca(spki, msg, sig);
            if (jca != light) {
                return "disagree";
            }
        }
        return light ? "ok" : "bad";
    }

    /** A fresh key through the JCA; returns {SPKI DER, signature DER}. */
    static byte[][] generateAndSign(byte[] msg) throws GeneralSecurityException {
        KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", "BC");
        kpg.initialize(new ECGenParameterSpec("sm2p256v1"), RNG);
        KeyPair pair = kpg.generateKeyPair();
        Signature signer = Signature.getInstance("SM3withSM2", "BC");
        signer.initSign(pair.getPrivate(), RNG);
        signer.update(msg);
        return new byte[][] {pair.getPublic().getEncoded(), signer.sign()};
    }

    /** Sign with the given private scalar (lightweight API); returns {SPKI DER, signature DER}. */
    static byte[][] signWith(BigInteger d, byte[] msg, byte[] uid) throws Exception {
        ECPrivateKeyParameters priv = new ECPrivateKeyParameters(d, DOMAIN);
        ECPoint q = DOMAIN.getG().multiply(d).normalize();
        byte[] spki = SubjectPublicKeyInfoFactory
                .createSubjectPublicKeyInfo(new ECPublicKeyParameters(q, DOMAIN)).getEncoded("DER");
        CipherParameters params = new ParametersWithRandom(priv, RNG);
        SM2Signer signer = new SM2Signer();
        signer.init(true, uid == null ? params : new ParametersWithID(params, uid));
        signer.update(msg, 0, msg.length);
        return new byte[][] {spki, signer.generateSignature()};
    }

    private static byte[] readKey(String arg) throws IOException {
        Path path = Paths.get(arg);
        if (Files.isRegularFile(path)) {
            return Files.readAllBytes(path);
        }
        return Hex.decode(arg);
    }

    private static String runJob(String line) {
        String[] f = line.trim().split("\\s+");
        try {
            switch (f[0]) {
                case "verify":
                    return verify(unhex(f[1]), unhex(f[2]), unhex(f[3]), f[4].equals("-") ? null : unhex(f[4]));
                case "gen": {
                    byte[][] out = generateAndSign(unhex(f[1]));
                    return hex(out[0]) + " " + hex(out[1]);
                }
                case "signd": {
                    byte[][] out = signWith(new BigInteger(f[1], 16), unhex(f[2]),
                            f[3].equals("-") ? null : unhex(f[3]));
                    return hex(out[0]) + " " + hex(out[1]);
                }
                default:
                    return "error:unknown-job";
            }
        } catch (Exception e) {
            return "error:" + e.getClass().getSimpleName();
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.US_ASCII);
        if (args.length >= 4 && args[0].equals("verify")) {
            byte[] uid = args.length >= 5 ? unhex(args[4]) : null;
            String res;
            try {
                res = verify(readKey(args[1]), Files.readAllBytes(Paths.get(args[2])),
                        Files.readAllBytes(Paths.get(args[3])), uid);
            } catch (Exception e) {
                System.err.println("error: " + e);
                System.exit(2);
                return;
            }
            out.println(res);
            out.flush();
            System.exit(res.equals("ok") ? 0 : 1);
        } else if (args.length == 4 && args[0].equals("sign")) {
            byte[][] res = generateAndSign(Files.readAllBytes(Paths.get(args[1])));
            Files.write(Paths.get(args[2]), res[0]);
            Files.write(Paths.get(args[3]), res[1]);
        } else if (args.length == 2 && args[0].equals("batch")) {
            try (BufferedReader in = Files.newBufferedReader(Paths.get(args[1]), StandardCharsets.US_ASCII)) {
                String line;
                while ((line = in.readLine()) != null) {
                    if (!line.isBlank()) {
                        out.println(runJob(line));
                    }
                }
            }
            out.flush();
        } else {
            System.err.println("usage: Sm2Tool verify <spki-hex-or-file> <msg-file> <sig-file> [uid-hex]"
                    + " | sign <msg-file> <spki-out> <sig-out> | batch <jobs-file>");
            System.exit(2);
        }
    }
}
