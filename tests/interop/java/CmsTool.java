// SM2 CMS SignedData with BouncyCastle (bcprov + bcpkix + bcutil), for zhengyin's interop tests.
//
// Compiled by tests/interop/test_cms_interop.py against Debian's jars:
//   javac -cp /usr/share/java/bcprov.jar:/usr/share/java/bcpkix.jar:/usr/share/java/bcutil.jar \
//         -d OUT CmsTool.java
//
// One command, batch <jobs-file>: one JVM, one output line per job line (hex "-" = none):
//   verify <cms-hex> <content-hex|->
//       CMSSignedData (detached when content is given) + SignerInformation.verify with a
//       JcaSimpleSignerInfoVerifierBuilder (provider BC) built from the certificate matching
//       the SignerInfo's sid.
//       -> ok | bad (signature) | bad-digest (messageDigest) | error:<exception>:<message>
//   sign <d-hex> <cert-hex> <content-hex> <attached 0|1> <der 0|1>
//       CMSSignedDataGenerator, "SM3withSM2" with the private scalar d, the certificate added;
//       der=0 is BouncyCastle's default getEncoded() (BER), der=1 getEncoded("DER").
//       -> <cms-hex> | error:<exception>:<message>

import java.io.BufferedReader;
import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Security;
import java.util.Collection;

import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.CMSSignerDigestMismatchException;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.ECNamedCurveTable;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.jce.spec.ECNamedCurveParameterSpec;
import org.bouncycastle.jce.spec.ECPrivateKeySpec;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.util.Store;
import org.bouncycastle.util.encoders.Hex;

public final class CmsTool {
    private CmsTool() {
    }

    private static byte[] unhex(String s) {
        return s.equals("-") ? null : Hex.decode(s);
    }

    @SuppressWarnings("unchecked")
    static String verify(byte[] cms, byte[] content) throws Exception {
        CMSSignedData sd = content == null ? new CMSSignedData(cms)
                : new CMSSignedData(new CMSProcessableByteArray(content), cms);
        Collection<SignerInformation> signers = sd.getSignerInfos().getSigners();
        if (signers.size() != 1) {
            return "error:signers:" + signers.size();
        }
        SignerInformation signer = signers.iterator().next();
        Store<X509CertificateHolder> certs = sd.getCertificates();
        Collection<X509CertificateHolder> match = certs.getMatches(signer.getSID());
        if (match.isEmpty()) {
            return "error:no-certificate";
        }
        try {
            boolean ok = signer.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC")
                    .build(match.iterator().next()));
            return ok ? "ok" : "bad";
        } catch (CMSSignerDigestMismatchException e) {
            return "bad-digest";
        }
    }

    static String sign(BigInteger d, byte[] certDer, byte[] content, boolean attached, boolean der)
            throws Exception {
        ECNamedCurveParameterSpec spec = ECNamedCurveTable.getParameterSpec("sm2p256v1");
        PrivateKey key = KeyFactory.getInstance("EC", "BC").generatePrivate(new ECPrivateKeySpec(d, spec));
        X509CertificateHolder cert = new X509CertificateHolder(certDer);
        ContentSigner signer = new JcaContentSignerBuilder("SM3withSM2").setProvider("BC").build(key);
        CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
        gen.addSignerInfoGenerator(new JcaSignerInfoGeneratorBuilder(
                new JcaDigestCalculatorProviderBuilder().setProvider("BC").build()).build(signer, cert));
        gen.addCertificate(cert);
        CMSSignedData out = gen.generate(new CMSProcessableByteArray(content), attached);
        return Hex.toHexString(der ? out.getEncoded("DER") : out.getEncoded());
    }

    private static String runJob(String line) {
        String[] f = line.trim().split("\\s+");
        try {
            switch (f[0]) {
                case "verify":
                    return verify(unhex(f[1]), unhex(f[2]));
                case "sign": {
                    byte[] content = unhex(f[3]);
                    return sign(new BigInteger(f[1], 16), unhex(f[2]), content == null ? new byte[0] : content,
                            f[4].equals("1"), f[5].equals("1"));
                }
                default:
                    return "error:unknown-job";
            }
        } catch (Exception e) {
            String msg = String.valueOf(e.getMessage()).replaceAll("\\s+", " ");
            return "error:" + e.getClass().getSimpleName() + ":" + msg;
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        if (args.length != 2 || !args[0].equals("batch")) {
            System.err.println("usage: CmsTool batch <jobs-file>");
            System.exit(2);
        }
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.US_ASCII);
        try (BufferedReader in = Files.newBufferedReader(Paths.get(args[1]), StandardCharsets.US_ASCII)) {
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.isBlank()) {
                    out.println(runJob(line));
                }
            }
        }
        out.flush();
    }
}
