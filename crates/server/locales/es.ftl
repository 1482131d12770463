# Consola del personal de Rapport — español.

skip-to-content = Saltar al contenido
nav-label = Navegación principal
nav-section-admin = Administración
nav-dashboard = Panel
nav-patients = Pacientes
nav-audit = Registro de auditoría
nav-users = Cuentas del personal
nav-tokens = Tokens de API
nav-settings = Ajustes
logout = Cerrar sesión
language-label = Idioma
language-apply = Aplicar
save = Guardar
actions = Acciones

role-admin = Administración
role-manager = Dirección
role-marketing = Marketing
role-customer-service = Atención al paciente
role-membership-desk = Mostrador de socios
role-doctor = Médico
role-analyst = Analista

login-title = Iniciar sesión
login-subtitle = Relación con pacientes y programa de socios para su hospital.
login-login = Usuario
login-password = Contraseña
login-submit = Entrar
login-missing = Escriba su usuario y su contraseña.
login-invalid = El usuario o la contraseña no son correctos.
login-locked = Demasiados intentos fallidos: la cuenta está bloqueada hasta { $until }.

error-home = Volver al inicio
error-forbidden-title = No disponible para su rol
error-forbidden-text = Su rol no incluye esta página o acción. Pídala a un administrador si la necesita.
error-not-found-title = No encontrado
error-not-found-text = Esta página o registro no existe, o se eliminó.
error-internal-title = Algo salió mal
error-internal-text = El servidor no pudo completar la solicitud. Inténtelo de nuevo; si persiste, avise a su administrador.
error-csrf-title = Solicitud rechazada
error-csrf-text = Este formulario no procede de este sitio o ha caducado. Recargue la página e inténtelo de nuevo.
error-too-large-title = Demasiados datos
error-too-large-text = El formulario envió más datos de los que acepta el servidor.
error-invalid-title = Opción no válida
error-invalid-text = El valor enviado no es una de las opciones ofrecidas.

field-error-required = Este campo es obligatorio.
field-error-invalid-date = Escriba la fecha como AAAA-MM-DD.
field-error-date-out-of-range = La fecha está fuera del intervalo aceptado.
field-error-invalid-amount = Escriba un importe con dos decimales como máximo, p. ej. 120.50.
field-error-negative-amount = El importe no puede ser negativo.
field-error-amount-too-large = El importe es demasiado grande.
field-error-invalid-enum = Elija una de las opciones ofrecidas.
field-error-invalid-id = Use letras, dígitos, guiones o guiones bajos.
field-error-too-long = Este texto es demasiado largo.
field-error-invalid-text = Escriba entre 1 y 50 caracteres.
field-error-invalid-login = Use de 1 a 64 minúsculas, dígitos, puntos, guiones o guiones bajos.
field-error-password-too-short = La contraseña necesita al menos 12 caracteres.
field-error-password-too-long = La contraseña es demasiado larga.
field-error-password-is-login = La contraseña no puede ser el usuario.
field-error-password-unchanged = La nueva contraseña debe ser distinta de la actual.
field-error-incorrect = No es su contraseña actual.
field-error-visit-exists = Ya existe una visita con este identificador.
field-error-user-exists = Ya existe una cuenta con este usuario.

dashboard-as-of = A fecha de { $date }
dashboard-computed = Cifras calculadas el { $at }
kpi-heading = Cifras clave
kpi-period = { $count ->
    [one] último día frente al anterior
   *[other] últimos { $n } días frente a los { $n } anteriores
}
kpi-prior = frente a { $value }
kpi-patients = Pacientes
kpi-visits = Visitas
kpi-revenue = Ingresos
kpi-new-patients = Pacientes nuevos
kpi-return-rate = Tasa de retorno
kpi-nps = NPS
kpi-complaints = Reclamaciones
kpi-follow-ups = Seguimientos pendientes
kpi-new-members = Socios nuevos
planned-title = Llegará con próximos módulos
planned-kpi-text = Estas cifras aparecerán cuando sus módulos estén en uso; no se estima nada en su lugar.
planned-patient-text = Estas secciones aparecerán cuando sus módulos estén en uso.
planned-membership = Socios y puntos
planned-follow-ups = Seguimientos
planned-messages = Mensajes
planned-surveys = Encuestas
planned-complaints = Reclamaciones

chart-months-title = Ingresos y visitas por mes
chart-revenue = Ingresos
chart-visits = Visitas
chart-segments-title = Pacientes por segmento RFM
chart-pareto-title = Concentración de ingresos (Pareto)
chart-pareto-desc = El 20 % de pacientes que más gasta aporta { $share } de los ingresos.
chart-pareto-point = 20 % superior → { $share }
chart-pareto-summary = 20 % superior de pacientes: { $share } de los ingresos
chart-pareto-x = proporción de pacientes, de mayor a menor gasto
chart-cohorts-title = Retención por cohortes
chart-cohorts-desc = Para cada mes de primera visita, la proporción de esos pacientes que volvió en cada mes siguiente.
chart-cohort-size = Pacientes
chart-month-offset = M{ $k }

empty-dashboard-title = Aún no hay visitas
empty-dashboard-text = El panel se completa cuando se registran o importan visitas.
empty-list-title = No hay pacientes
empty-list-text = Ningún paciente cumple estos filtros.
empty-search-title = Sin resultados
empty-search-text = Pruebe con el inicio del nombre, el teléfono completo o el identificador del hospital.
empty-no-visits = Aún no hay visitas registradas.
empty-audit = No hay entradas que coincidan.
empty-tokens = Aún no hay tokens de API.

segment-champions = Campeones
segment-loyal = Fieles
segment-potential-loyalist = Potencialmente fieles
segment-new = Nuevos
segment-need-attention = Requieren atención
segment-about-to-sleep = A punto de dormirse
segment-at-risk = En riesgo
segment-hibernating = Hibernando
segment-lost = Perdidos

search-label = Buscar pacientes
search-placeholder = Nombre, teléfono o identificador del hospital
search-hint = Los resultados se actualizan mientras escribe.
filter-segment = Segmento
filter-all = Todos los segmentos
filter-churn = Solo riesgo de abandono
filter-apply = Aplicar
patients-table = Lista de pacientes
patients-count = { $count ->
    [one] { $n } paciente
   *[other] { $n } pacientes
}
col-name = Nombre
col-patient-id = Id. del hospital
col-sex-age = Sexo · edad
col-phone = Teléfono
col-last-visit = Última visita
col-visits = Visitas
col-monetary = Gasto
col-segment = Segmento
pager-label = Páginas
pager-prev = Anterior
pager-next = Siguiente
pager-older = Entradas anteriores
pager-page = Página { $page }
masked-badge = Enmascarado
masked-text = Los datos de contacto están enmascarados para su rol.
badge-churn-risk = Riesgo de abandono
sex-m = Hombre
sex-f = Mujer
age-years = { $count ->
    [one] { $n } año
   *[other] { $n } años
}
days-ago = { $count ->
    [0] hoy
    [one] hace { $n } día
   *[other] hace { $n } días
}
visits-count = { $count ->
    [one] { $n } visita
   *[other] { $n } visitas
}

patient-erased = Borrado a petición
patient-unnamed = (sin nombre)
patient-profile = Perfil
patient-scores = Puntuaciones
patient-timeline = Visitas
patient-consent = Consentimiento
patient-departments = Servicios
patient-household = Unidad familiar
patient-more-visits = Solo se muestran las visitas más recientes.
patient-visit-recorded = Visita registrada.
patient-consent-recorded = Decisión de consentimiento registrada.
field-phone = Teléfono
field-email = Correo electrónico
field-national-id = Documento de identidad
field-birth = Nacimiento
field-district = Distrito
field-source = Origen
field-registered = Alta
field-preferred-channel = Canal preferido
field-preferred-language = Idioma preferido
field-notes = Notas
stat-visits = Visitas
stat-monetary = Gasto total
stat-first-visit = Primera visita
stat-last-visit = Última visita
stat-recency = Última vez
score-r = Recencia (R)
score-f = Frecuencia (F)
score-m = Valor (M)
score-p-alive = P(activo)
score-expected-visits = Visitas esperadas, 90 días
score-clv = Valor, 12 meses
score-refreshed = Puntuaciones actualizadas el { $at }.
score-none = Aún no hay puntuaciones: se calculan cada noche para los pacientes con visitas.
department-none = Sin servicio

action-record-visit = Registrar una visita
action-save-visit = Guardar visita
action-record-consent = Registrar una decisión
visit-date = Fecha
visit-kind = Tipo
visit-department = Servicio
visit-amount = Importe (CNY)
visit-amount-hint = Por ejemplo 120.50
visit-id = Id. de la visita
kind-outpatient = Consulta externa
kind-inpatient = Hospitalización
kind-exam = Prueba
kind-checkup = Chequeo
kind-telehealth = Telemedicina

consent-channel = Canal
consent-purpose = Finalidad
consent-state = Decisión
consent-since = Desde
consent-granted = Otorgado
consent-withdrawn = Retirado
consent-none = Sin preguntar
consent-decision = Decisión
consent-source = Cómo se obtuvo
consent-note = Nota
consent-history = Historial
channel-sms = SMS
channel-email = Correo electrónico
channel-wechat = WeChat
channel-phone = Llamada
purpose-care = Mensajes asistenciales
purpose-marketing = Marketing

audit-subtitle = Cada lectura de una ficha, cada cambio, exportación y borrado, y cada acceso denegado.
audit-at = Hora
audit-actor = Quién
audit-action = Acción
audit-subject = Objeto
audit-outcome = Resultado
audit-detail = Detalle
audit-patient = Id. de paciente

users-subtitle = Cuentas del personal y sus roles. Las cuentas se desactivan, nunca se borran.
users-login = Usuario
users-name = Nombre
users-role = Rol
users-status = Estado
users-created-on = Alta
users-active = Activa
users-inactive = Desactivada
users-locked = Bloqueada
users-new = Nueva cuenta
users-password = Contraseña inicial
users-create = Crear cuenta
users-created = Cuenta creada.
users-deactivate = Desactivar
users-deactivated = Cuenta desactivada; sus sesiones terminaron.
users-confirm-deactivate = ¿Desactivar esta cuenta? Sus sesiones terminan al instante.
users-last-admin = No se puede desactivar la última cuenta de administración activa.

tokens-subtitle = Los tokens permiten a los sistemas del hospital llamar a la API. Cada uno tiene un rol, como una cuenta.
tokens-name = Nombre
tokens-made = Creado
tokens-new = Nuevo token
tokens-create = Crear token
tokens-created = Token creado.
tokens-copy-now = Copie el token ahora
tokens-shown-once = Solo se muestra esta vez; el servidor guarda únicamente su hash.
tokens-revoke = Revocar
tokens-revoked = Token revocado.
tokens-revoked-at = Revocado el { $at }
tokens-confirm-revoke = ¿Revocar este token? Los sistemas que lo usan dejan de funcionar al instante.

settings-signed-in-as = Sesión iniciada como
settings-language = Idioma
settings-language-browser = Seguir al navegador
settings-language-saved = Idioma guardado.
settings-password = Contraseña
settings-current-password = Contraseña actual
settings-new-password = Nueva contraseña
settings-confirm-password = Repita la nueva contraseña
settings-password-hint = Al menos 12 caracteres, distinta del usuario.
settings-change-password = Cambiar contraseña
settings-password-changed = Contraseña cambiada; sus otras sesiones terminaron.
settings-password-mismatch = Las dos contraseñas nuevas no coinciden.

## Membresía
nav-membership = Membresía
membership-tabs-label = Secciones de membresía
membership-tab-members = Socios
membership-tab-tiers = Niveles
membership-tab-rules = Reglas de puntos
membership-tab-rewards = Recompensas
membership-tab-referrals = Recomendaciones
planned-badge = Próximamente
membership-planned-rules = Las reglas de puntos deciden cuántos puntos gana cada visita según la categoría de tarifa, el nivel y la campaña. Se gestionarán aquí.
membership-planned-rewards = El catálogo de recompensas, con los puntos que cuesta cada una y sus existencias, se gestionará aquí.
membership-planned-referrals = El embudo de recomendaciones (invitados, registrados, primera visita, recompensados) se mostrará aquí.
membership-planned-note = Esta sección está en construcción; no se muestran cifras hasta que funcione con datos reales.
membership-figures-at = Cifras al { $at }
membership-members = Socios
membership-liability = Pasivo de puntos
membership-search-label = Buscar un socio
membership-search-hint = Número de tarjeta, id del hospital, teléfono o el inicio del nombre
membership-filter-tier = Nivel
membership-filter-status = Estado
membership-table = Socios
membership-empty-title = No hay socios aquí
membership-empty-text = Ningún socio coincide con estos filtros. Inscriba a un paciente con el formulario o desde su página 360°.
membership-empty-search = Ninguno de los pacientes encontrados es socio.
membership-enrol = Inscribir a un paciente
membership-enrol-patient = Id del paciente en el hospital
membership-enrol-hint = El paciente empieza en el nivel más bajo sin puntos.
pager-first = Primera página
points-count = { $count ->
    [one] { $n } punto
   *[other] { $n } puntos
}
tier-standard = Estándar
tier-silver = Plata
tier-gold = Oro
tier-platinum = Platino
tier-from = antes { $tier }
tier-change-enrolled = inscripción
tier-change-upgrade = subida
tier-change-downgrade = bajada
tier-change-reassigned = reasignación
member-status-active = Activa
member-status-suspended = Suspendida
member-status-closed = Cerrada
member-type = Tipo de membresía
member-type-individual = Individual
member-type-family = Familiar
member-type-corporate = Empresa
member-type-vip-card = Tarjeta VIP
member-card-title = Membresía
member-card-no = Número de tarjeta
member-tier = Nivel
member-status = Estado
member-joined = socio desde el { $date }
member-joined-col = Alta
member-available = Puntos disponibles
member-qualifying = Puntos de nivel (12 meses)
member-lifetime = Puntos acumulados
member-progress = Progreso hacia el siguiente nivel
member-next-tier = { $count ->
    [one] Falta { $points } punto de nivel para { $tier }
   *[other] Faltan { $points } puntos de nivel para { $tier }
}
member-top-tier = Nivel más alto alcanzado
member-ledger = Movimientos recientes de puntos
member-ledger-empty = Todavía no hay movimientos de puntos.
member-ledger-more = Los movimientos anteriores están en el historial completo del socio.
member-tier-history = Historial de niveles
member-not-enrolled = Este paciente no es socio.
member-enrolled = El paciente ya es socio.
member-earned = Puntos añadidos.
member-redeemed = Puntos canjeados.
member-adjusted = Ajuste registrado.
member-error-no-patient = Ningún paciente tiene este id del hospital.
member-error-already = Este paciente ya es socio.
member-error-insufficient = Puntos insuficientes: solo hay { $available } disponibles. No se ha cambiado nada.
member-error-inactive = Solo las membresías activas ganan y canjean puntos.
member-error-key-reused = Este formulario ya se usó para otro movimiento. Recargue la página e inténtelo de nuevo.
member-error-points = Introduzca un número entero de puntos entre 1 y 100.000.000.
member-error-reason = Indique el motivo, de 1 a 500 caracteres.
action-enrol = Inscribir como socio
action-points = Ganar o canjear
action-adjust = Ajustar puntos
points-kind = Movimiento
points-amount = Puntos
points-hint = Disponibles ahora: { $available }
points-reason = Motivo
points-submit = Registrar puntos
adjust-delta = Puntos a sumar o restar
adjust-hint = Use un signo menos para restar puntos, p. ej. -200. Los ajustes nunca cuentan para el nivel.
adjust-submit = Registrar ajuste
ledger-at = Cuándo
ledger-kind = Movimiento
ledger-points = Puntos
ledger-balance = Saldo
ledger-by = Por
ledger-by-system = sistema
ledger-kind-earn = Ganancia
ledger-kind-redeem = Canje
ledger-kind-expire = Caducidad
ledger-kind-adjust = Ajuste
ledger-kind-reverse = Anulación
chart-tiers-title = Socios por nivel
tiers-heading = Definición de niveles
tiers-explain = Los puntos de nivel son los ganados en los últimos 12 meses. Bajar un umbral sube de nivel a los socios al momento; subirlo solo los baja en el aniversario de su membresía.
tiers-name = Nivel
tiers-threshold = Puntos de nivel
tiers-members = Socios
tiers-discounts = Descuentos
tiers-perks = Ventajas
tiers-save = Guardar niveles
tiers-confirm = Todos los socios se evaluarán de nuevo con las nuevas definiciones. ¿Guardar?
tiers-saved = { $moved ->
    [one] Niveles guardados. { $evaluated } socios evaluados de nuevo, { $moved_n } cambió de nivel.
   *[other] Niveles guardados. { $evaluated } socios evaluados de nuevo, { $moved_n } cambiaron de nivel.
}
tiers-error-name = introduzca un nombre de 1 a 50 caracteres.
tiers-error-threshold = introduzca un número entero de puntos, 0 o más.
tiers-error-discount = introduzca un descuento de 0 a 100 %, con dos decimales como máximo.
tiers-error-order = Los umbrales deben subir con los niveles, empezando en 0 para el más bajo.
fee-registration = Inscripción
fee-examination = Exploración
fee-treatment = Tratamiento
fee-hospitalisation = Hospitalización
fee-check-up = Chequeo
perk-priority-lane = Atención preferente
perk-exclusive-doctor = Médico asignado
perk-home-visits = Visitas a domicilio
perk-free-annual-check-up = Chequeo anual gratuito
